// JSON schemas of the Chaos Mesh (chaos-mesh.org/v1alpha1) and prometheus-operator
// (monitoring.coreos.com/v1) fields our overlays use, written from their published CRDs (the
// OpenAPI schemas in the CRD manifests): types, enums and required fields as the API server would
// check them. additionalProperties: false makes a misspelt field an error here, where the API server
// would prune it silently.
const str = { type: 'string' } as const;
const strList = { type: 'array', items: str } as const;
const strMap = { type: 'object', additionalProperties: str } as const;
const duration = { type: 'string', pattern: '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$' } as const;

const metadata = {
  type: 'object',
  required: ['name', 'namespace'],
  properties: { name: str, namespace: str, labels: strMap, annotations: strMap },
  additionalProperties: false,
} as const;

/** Chaos Mesh PodSelectorSpec (the parts we use). */
const chaosSelector = {
  type: 'object',
  properties: { namespaces: strList, labelSelectors: strMap, pods: { type: 'object', additionalProperties: strList }, expressionSelectors: { type: 'array' } },
  additionalProperties: false,
} as const;
const mode = { enum: ['one', 'all', 'fixed', 'fixed-percent', 'random-max-percent'] } as const;
const selectorFields = { selector: chaosSelector, mode, value: str, duration } as const;

function kind(name: string, apiVersion: string, spec: object): object {
  return {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: { apiVersion: { const: apiVersion }, kind: { const: name }, metadata, spec },
    additionalProperties: false,
  };
}

const CHAOS = 'chaos-mesh.org/v1alpha1';
const MONITORING = 'monitoring.coreos.com/v1';

export const CRD_SCHEMAS: Record<string, object> = {
  [`${CHAOS}/PodChaos`]: kind('PodChaos', CHAOS, {
    type: 'object',
    required: ['action', 'selector', 'mode'],
    properties: { ...selectorFields, action: { enum: ['pod-kill', 'pod-failure', 'container-kill'] }, gracePeriod: { type: 'integer', minimum: 0 }, containerNames: strList },
    additionalProperties: false,
  }),
  [`${CHAOS}/NetworkChaos`]: kind('NetworkChaos', CHAOS, {
    type: 'object',
    required: ['action', 'selector', 'mode'],
    properties: {
      ...selectorFields,
      action: { enum: ['netem', 'delay', 'loss', 'duplicate', 'corrupt', 'partition', 'bandwidth'] },
      direction: { enum: ['to', 'from', 'both'] },
      target: { type: 'object', required: ['selector', 'mode'], properties: { selector: chaosSelector, mode, value: str }, additionalProperties: false },
      delay: { type: 'object', required: ['latency'], properties: { latency: duration, jitter: duration, correlation: str }, additionalProperties: false },
      externalTargets: strList,
    },
    additionalProperties: false,
  }),
  [`${CHAOS}/IOChaos`]: kind('IOChaos', CHAOS, {
    type: 'object',
    required: ['action', 'selector', 'mode', 'volumePath'],
    properties: {
      ...selectorFields,
      action: { enum: ['latency', 'fault', 'attrOverride', 'mistake'] },
      volumePath: str,
      path: str,
      delay: duration,
      percent: { type: 'integer', minimum: 0, maximum: 100 },
      methods: strList,
      containerNames: strList,
    },
    additionalProperties: false,
  }),
  [`${CHAOS}/StressChaos`]: kind('StressChaos', CHAOS, {
    type: 'object',
    required: ['selector', 'mode'],
    properties: {
      ...selectorFields,
      containerNames: strList,
      stressors: {
        type: 'object',
        properties: {
          cpu: { type: 'object', required: ['workers'], properties: { workers: { type: 'integer', minimum: 1 }, load: { type: 'integer', minimum: 0, maximum: 100 } }, additionalProperties: false },
          memory: { type: 'object', required: ['workers'], properties: { workers: { type: 'integer', minimum: 1 }, size: str }, additionalProperties: false },
        },
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  }),
  [`${MONITORING}/ServiceMonitor`]: kind('ServiceMonitor', MONITORING, {
    type: 'object',
    required: ['selector', 'endpoints'],
    properties: {
      selector: {
        type: 'object',
        properties: {
          matchLabels: strMap,
          matchExpressions: {
            type: 'array',
            items: { type: 'object', required: ['key', 'operator'], properties: { key: str, operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: strList }, additionalProperties: false },
          },
        },
        additionalProperties: false,
      },
      namespaceSelector: { type: 'object', properties: { any: { type: 'boolean' }, matchNames: strList }, additionalProperties: false },
      podTargetLabels: strList,
      jobLabel: str,
      endpoints: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            port: str,
            path: str,
            scheme: { enum: ['http', 'https'] },
            interval: duration,
            scrapeTimeout: duration,
            relabelings: {
              type: 'array',
              items: {
                type: 'object',
                properties: { sourceLabels: strList, separator: str, targetLabel: str, regex: str, replacement: str, action: str, modulus: { type: 'integer' } },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  }),
  [`${MONITORING}/PrometheusRule`]: kind('PrometheusRule', MONITORING, {
    type: 'object',
    properties: {
      groups: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'rules'],
          properties: {
            name: str,
            interval: duration,
            rules: {
              type: 'array',
              items: {
                type: 'object',
                required: ['expr'],
                properties: { alert: str, record: str, expr: str, for: duration, labels: strMap, annotations: strMap },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  }),
};
