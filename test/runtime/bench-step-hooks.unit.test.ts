import { STEP_METHODS, missingStepMethods } from '../../bench/step-hooks';

test('every reconcile step the bench times has its method on today\'s code', () => {
  expect(STEP_METHODS.map((s) => s.step)).toEqual(['material', 'synthesize', 'apply', 'gate']);
  expect(missingStepMethods()).toEqual([]);
});

test('negative control: a step whose method was renamed away is reported, naming it', () => {
  class Renamed { resolveAll(): void { /* the old name is gone */ } }
  expect(missingStepMethods([{ step: 'material', proto: Renamed.prototype, method: 'resolve' }])).toEqual(['material (Renamed.resolve)']);
});
