import { conversionDelta, parseConversionCounts } from '../../bench/conversion-calls';
import { completionRatePerS, perRun, ratio } from '../../bench/figures';

describe('ratio of two figures', () => {
  test.each([
    ['both present', 3500, 54, 3500 / 54],
    ['equal', 100, 100, 1],
    ['numerator missing', undefined, 54, undefined],
    ['denominator missing', 3500, undefined, undefined],
    ['denominator zero', 3500, 0, undefined],
    ['denominator NaN (no samples)', 3500, NaN, undefined],
    ['numerator NaN', NaN, 54, undefined],
  ])('%s', (_name, a, b, want) => {
    const got = ratio(a, b);
    if (want === undefined) expect(got).toBeUndefined(); else expect(got).toBeCloseTo(want, 10);
  });
});

describe('sustained completion rate', () => {
  test.each([
    ['keeps up with 10/s, whatever the latency', [5000, 5100, 5200, 5300, 5400], 10],
    ['completes at its own pace when it cannot keep up', [0, 500, 1000, 1500], 2],
    ['order does not matter', [1500, 0, 1000, 500], 2],
    ['runs that never completed are left out', [0, undefined, 1000, NaN], 1],
    ['one completion is no rate', [1000], undefined],
    ['none', [], undefined],
    ['all at the same millisecond', [7, 7, 7], undefined],
  ])('%s', (_name, at, want) => {
    const got = completionRatePerS(at as Array<number | undefined>);
    if (want === undefined) expect(got).toBeUndefined(); else expect(got).toBeCloseTo(want, 10);
  });

  test.each([
    [12, 4, 3],
    [0, 4, 0],
    [12, 0, undefined],
  ])('perRun(%p, %p) = %p', (calls, runs, want) => {
    expect(perRun(calls, runs)).toBe(want);
  });
});

/** A slice of a real kube-apiserver v1.36.3 /metrics answer (buckets trimmed), after 5 pending PipelineRun creates. */
const METRICS = `# HELP apiserver_conversion_webhook_request_total [ALPHA] Counter for conversion webhook requests with success/failure and failure error type
# TYPE apiserver_conversion_webhook_request_total counter
apiserver_conversion_webhook_request_total{failure_type="",result="success"} 118
apiserver_conversion_webhook_duration_seconds_count{failure_type="",result="success"} 118
# HELP apiserver_crd_conversion_webhook_duration_seconds [ALPHA] CRD webhook conversion duration in seconds
# TYPE apiserver_crd_conversion_webhook_duration_seconds histogram
apiserver_crd_conversion_webhook_duration_seconds_bucket{crd_name="pipelineruns.tekton.dev",from_version="v1",succeeded="true",to_version="v1beta1",le="0.001"} 1
apiserver_crd_conversion_webhook_duration_seconds_sum{crd_name="pipelineruns.tekton.dev",from_version="v1",succeeded="true",to_version="v1beta1"} 0.130063459
apiserver_crd_conversion_webhook_duration_seconds_count{crd_name="pipelineruns.tekton.dev",from_version="v1",succeeded="true",to_version="v1beta1"} 15
apiserver_crd_conversion_webhook_duration_seconds_count{crd_name="taskruns.tekton.dev",from_version="v1",succeeded="true",to_version="v1beta1"} 4
apiserver_crd_conversion_webhook_duration_seconds_count{crd_name="taskruns.tekton.dev",from_version="v1",succeeded="false",to_version="v1beta1"} 1
apiserver_request_total{code="201",resource="pipelineruns",verb="POST"} 5
`;

describe('conversion webhook counts from kube-apiserver /metrics', () => {
  test.each([
    ['calls: the CRD histogram\'s count, all CRDs', (c: ReturnType<typeof parseConversionCounts>) => c.calls, 20],
    ['invocations: the request counter, also those with nothing to send', (c: ReturnType<typeof parseConversionCounts>) => c.invocations, 118],
    ['calls by CRD and direction', (c: ReturnType<typeof parseConversionCounts>) => c.byCrd, {
      'pipelineruns.tekton.dev v1→v1beta1': 15, 'taskruns.tekton.dev v1→v1beta1': 4, 'taskruns.tekton.dev v1→v1beta1 (failed)': 1,
    }],
  ])('%s', (_name, pick, want) => {
    expect(pick(parseConversionCounts(METRICS))).toEqual(want);
  });

  test.each([
    ['an API server that never converted', '# HELP nothing\napiserver_request_total{verb="GET"} 3\n', { calls: 0, byCrd: {}, invocations: 0 }],
    ['empty text', '', { calls: 0, byCrd: {}, invocations: 0 }],
    // Negative control: a name that only starts like the calls metric is not counted.
    ['a look-alike name', 'apiserver_crd_conversion_webhook_duration_seconds_count_total{crd_name="x"} 9\n', { calls: 0, byCrd: {}, invocations: 0 }],
  ])('%s', (_name, text, want) => {
    expect(parseConversionCounts(text)).toEqual(want);
  });

  test('a phase\'s calls are the difference of two readings; CRDs first seen in the phase count whole, unchanged ones are left out', () => {
    const before = parseConversionCounts(METRICS);
    const after = parseConversionCounts(METRICS
      .replace('to_version="v1beta1"} 15', 'to_version="v1beta1"} 40')
      .replace('result="success"} 118', 'result="success"} 300')
      + 'apiserver_crd_conversion_webhook_duration_seconds_count{crd_name="customruns.tekton.dev",from_version="v1",succeeded="true",to_version="v1beta1"} 2\n');
    expect(conversionDelta(before, after)).toEqual({ calls: 27, byCrd: { 'pipelineruns.tekton.dev v1→v1beta1': 25, 'customruns.tekton.dev v1→v1beta1': 2 }, invocations: 182 });
  });
});
