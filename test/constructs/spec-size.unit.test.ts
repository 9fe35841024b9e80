import { validateSidecarSpec } from '../../constructs/synthesize';
import { MAX_SPEC_BYTES } from '../../constructs/validate';
import { specOfSize } from './fixtures';


describe('a spec the operator can carry on its objects, by size', () => {
  test.each([
    ['well under the limit', 10_000, true],
    ['one byte under the limit', MAX_SPEC_BYTES - 1, true],
    ['exactly the limit', MAX_SPEC_BYTES, true],
    ['one byte over the limit', MAX_SPEC_BYTES + 1, false],
    ['the annotation limit itself', 262_144, false],
    ['1 MiB', 1024 * 1024, false],
  ])('%s (%d bytes): valid=%s', (_what, bytes, valid) => {
    const spec = specOfSize(bytes);
    expect(JSON.stringify(spec).length).toBe(bytes);
    const problems = validateSidecarSpec('big', spec as any);
    expect(problems.length === 0).toBe(valid);
    if (!valid) {
      expect(problems).toHaveLength(1);
      // The message names the spec's size, the limit and what the user can change.
      expect(problems[0].message).toContain(`is ${bytes.toLocaleString('en-US')} bytes as JSON`);
      expect(problems[0].message).toContain(MAX_SPEC_BYTES.toLocaleString('en-US'));
      expect(problems[0].message).toContain('valueFrom');
    }
  });

  test('bytes, not characters: a multi-byte value counts by its UTF-8 length', () => {
    const spec = specOfSize(MAX_SPEC_BYTES);
    // Replace two ASCII bytes by one two-byte character: same bytes, one character fewer.
    const env = spec.template.containers[0].env[0];
    env.value = 'é' + env.value.slice(2);
    expect(validateSidecarSpec('big', spec as any)).toEqual([]);
    env.value += 'x'; // one byte more
    expect(validateSidecarSpec('big', spec as any).map((p) => p.field)).toEqual(['spec']);
  });
});
