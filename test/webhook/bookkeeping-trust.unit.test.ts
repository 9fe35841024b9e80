import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { trustedRunId } from '../../src/bookkeeping';

test.each([
  ['the webhook\'s pair', { [ANNOTATIONS.runId]: 'abcd1234' }, { [LABELS.admitted]: 'abcd1234' }, 'abcd1234'],
  ['a run id without the marker (hand-written)', { [ANNOTATIONS.runId]: 'abcd1234' }, undefined, undefined],
  ['a marker for another run id (copied from two runs)', { [ANNOTATIONS.runId]: 'abcd1234' }, { [LABELS.admitted]: 'zzzz9999' }, undefined],
  ['a marker without a run id', undefined, { [LABELS.admitted]: 'abcd1234' }, undefined],
  ['empty values', { [ANNOTATIONS.runId]: '' }, { [LABELS.admitted]: '' }, undefined],
  ['the marker as an annotation does not count', { [ANNOTATIONS.runId]: 'abcd1234', [LABELS.admitted]: 'abcd1234' }, undefined, undefined],
  ['nothing', undefined, undefined, undefined],
])('trustedRunId: %s', (_name, annotations, labels, want) => {
  expect(trustedRunId({ annotations, labels })).toBe(want);
});
