/**
 * The Kubernetes deployment (deploy/k8s): each overlay renders with `kubectl kustomize`, every
 * rendered object validates offline (built-in kinds against the Kubernetes API schemas shipped by
 * PyPI's kubernetes-validate, strictly; the KEDA and Prometheus Operator CRDs against the schemas
 * in deploy/k8s/schemas), and the properties the processor relies on hold in what renders: a
 * memory-backed /dev/shm shared by both containers, the probes, a grace period above the drain,
 * autoscaling bounded by the topology's partitions, and the GPU overlay's model repository made
 * of the deploy/triton/tensorrt configs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import YAML from 'yaml';
import { parseTopology } from '../../src/config/load.js';
import { METRIC } from '../../src/telemetry/metrics.js';
import type { KafkaSourceConfig } from '../../src/sources/kafka/config.js';
import { ROOT } from '../helpers/stack.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const K8S_VERSION = '1.32.0';

let python = '';
function render(overlay: string): { text: string; objects: Obj[] } {
  const text = execFileSync('kubectl', ['kustomize', path.join(ROOT, 'deploy/k8s', overlay)], { encoding: 'utf8' });
  return { text, objects: YAML.parseAllDocuments(text).map((d) => d.toJS() as Obj).filter(Boolean) };
}
function validate(yamlText: string): { tools: Record<string, string>; results: { kind: string; name: string; ok: boolean; against: string; error?: string }[] } {
  return JSON.parse(execFileSync(python, [path.join(ROOT, 'scripts/k8s/validate.py'), K8S_VERSION], { input: yamlText, encoding: 'utf8' }));
}
const one = (objs: Obj[], kind: string): Obj => {
  const found = objs.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, rendered ${found.length}`);
  return found[0]!;
};
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels?.[k] === v);

before(() => {
  python = execFileSync('bash', [path.join(ROOT, 'scripts/k8s/install.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const kubectl = JSON.parse(execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' })) as { clientVersion: { gitVersion: string }; kustomizeVersion: string };
  console.log(`tools: kubectl ${kubectl.clientVersion.gitVersion}, kustomize ${kubectl.kustomizeVersion}, validating against Kubernetes ${K8S_VERSION}`);
});

for (const overlay of ['overlays/cpu', 'overlays/gpu']) {
  describe(`deploy/k8s/${overlay}`, () => {
    let objects: Obj[] = [];
    let text = '';
    before(() => ({ text, objects } = render(overlay)));

    test('every rendered object validates offline (Kubernetes API schemas, strict; CRDs against deploy/k8s/schemas)', () => {
      const res = validate(text);
      console.log(`${overlay}: ${res.results.length} objects, kubernetes-validate ${res.tools['kubernetes-validate']}, jsonschema ${res.tools.jsonschema}, Python ${res.tools.python}`);
      const kinds = new Set(res.results.map((r) => r.kind));
      for (const k of ['Deployment', 'Service', 'ConfigMap', 'PodDisruptionBudget', 'ScaledObject', 'ServiceMonitor']) assert.ok(kinds.has(k), `${overlay} renders no ${k}`);
      assert.deepEqual(res.results.filter((r) => !r.ok).map((r) => `${r.kind}/${r.name} (${r.against}): ${r.error}`), []);
    });

    test('pod: shared memory-backed /dev/shm, probes, grace period above preStop + drain', () => {
      const dep = one(objects, 'Deployment');
      const pod = dep.spec.template.spec;
      const shm = (pod.volumes as Obj[]).filter((v) => v.emptyDir?.medium === 'Memory');
      assert.equal(shm.length, 1, 'one memory-backed emptyDir');
      assert.match(String(shm[0]!.emptyDir.sizeLimit), /^\d+(Mi|Gi)$/, 'the shared memory is sized');
      const containers = pod.containers as Obj[];
      assert.deepEqual(containers.map((c) => c.name).sort(), ['framewire', 'triton']);
      for (const c of containers) assert.ok((c.volumeMounts as Obj[]).some((m) => m.name === shm[0]!.name && m.mountPath === '/dev/shm'), `${c.name} does not mount the shared /dev/shm`);

      const fw = containers.find((c) => c.name === 'framewire')!;
      const port = (name: string | number): number => (typeof name === 'number' ? name : (fw.ports as Obj[]).find((p) => p.name === name)!.containerPort);
      assert.equal(fw.readinessProbe.httpGet.path, '/readyz');
      assert.equal(fw.livenessProbe.httpGet.path, '/healthz');

      // The topology the pod runs: the ConfigMap mounted where the args point, valid by our own schema.
      const topoVolume = (pod.volumes as Obj[]).find((v) => v.configMap && (fw.volumeMounts as Obj[]).some((m) => m.name === v.name && fw.args.join(' ').includes(m.mountPath)))!;
      assert.ok(topoVolume, 'the topology file in args comes from a mounted ConfigMap');
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === topoVolume.configMap.name)!;
      assert.ok(cm, `ConfigMap ${topoVolume.configMap.name} is not rendered`);
      const topology = parseTopology(cm.data['topology.yaml'], 'ConfigMap topology.yaml', { FRAMEWIRE_BROKERS: 'kafka:9092', HOSTNAME: 'pod-0' });
      assert.equal(port(fw.readinessProbe.httpGet.port), Number(topology.http.listen.split(':')[1]), 'probes hit the port http.listen serves');
      assert.equal(port(fw.livenessProbe.httpGet.port), Number(topology.http.listen.split(':')[1]));

      const grace = pod.terminationGracePeriodSeconds as number;
      const preStop = fw.lifecycle?.preStop?.sleep?.seconds ?? 0;
      const drainS = topology.shutdown.drainTimeoutMs / 1000;
      console.log(`${overlay}: grace ${grace} s, processor preStop ${preStop} s, drainTimeoutMs ${topology.shutdown.drainTimeoutMs}`);
      assert.ok(grace >= preStop + drainS + 5, `terminationGracePeriodSeconds ${grace} < preStop ${preStop} s + drain ${drainS} s + 5 s to close`);
      // Triton stays up while the processor drains, but never past the grace period.
      const triton = containers.find((c) => c.name === 'triton')!;
      const loop = /seq (\d+)\).*sleep ([\d.]+)/.exec((triton.lifecycle?.preStop?.exec?.command ?? []).join(' '));
      assert.ok(loop, "Triton's preStop waits for the processor");
      assert.ok(Number(loop[1]) * Number(loop[2]) <= grace && Number(loop[1]) * Number(loop[2]) >= drainS, `Triton's preStop waits ${Number(loop[1]) * Number(loop[2])} s: not within [drain, grace]`);
      assert.equal(triton.readinessProbe.httpGet.path, '/v2/health/ready');
    });

    test('autoscaling: KEDA on the consumer group lag, maxReplicaCount ≤ partitions; PDB, Service and ServiceMonitor select the pods', () => {
      const dep = one(objects, 'Deployment');
      const podLabels = dep.spec.template.metadata.labels as Record<string, string>;
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.data?.['topology.yaml'])!;
      const src = parseTopology(cm.data['topology.yaml'], 'topology', { FRAMEWIRE_BROKERS: 'kafka:9092' }).sources[0] as KafkaSourceConfig;
      const so = one(objects, 'ScaledObject');
      assert.equal(so.spec.scaleTargetRef.name, dep.metadata.name);
      const kafka = (so.spec.triggers as Obj[]).find((t) => t.type === 'kafka')!;
      assert.ok(kafka, 'a kafka trigger');
      assert.equal(kafka.metadata.topic, src.topic);
      assert.equal(kafka.metadata.consumerGroup, src.group);
      assert.ok(Number(kafka.metadata.lagThreshold) > 0);
      assert.ok(so.spec.cooldownPeriod >= 60, 'a cooldown (each scale change is a rebalance)');
      console.log(`${overlay}: maxReplicaCount ${so.spec.maxReplicaCount}, topic partitions ${src.partitions}`);
      assert.ok(so.spec.maxReplicaCount <= src.partitions, `maxReplicaCount ${so.spec.maxReplicaCount} > ${src.partitions} partitions: replicas beyond them idle`);
      assert.ok(so.spec.minReplicaCount >= 1 && so.spec.minReplicaCount <= so.spec.maxReplicaCount);

      const pdb = one(objects, 'PodDisruptionBudget');
      assert.ok(matches(pdb.spec.selector.matchLabels, podLabels), 'the PDB selects the pods');
      const svc = one(objects, 'Service');
      assert.ok(matches(svc.spec.selector, podLabels), 'the Service selects the pods');
      const sm = one(objects, 'ServiceMonitor');
      assert.ok(matches(sm.spec.selector.matchLabels, svc.metadata.labels), 'the ServiceMonitor selects the Service');
      for (const e of sm.spec.endpoints as Obj[]) {
        assert.ok((svc.spec.ports as Obj[]).some((p) => p.name === e.port), `ServiceMonitor port ${e.port} is not a Service port`);
        assert.equal(e.path, '/metrics');
      }
    });

    test("the Grafana dashboard queries only framewire's own metric names", () => {
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1')!;
      assert.ok(cm, 'a dashboard ConfigMap for the Grafana sidecar');
      const dash = JSON.parse(Object.values(cm.data as Record<string, string>)[0]!) as { panels: { title: string; targets: { expr: string }[] }[] };
      const known = new Set<string>(Object.values(METRIC));
      const used = dash.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/framewire_[a-z_]+/g)].map((m) => m[0])));
      assert.ok(used.length >= 10, 'the dashboard has panels');
      const unknown = used.filter((n) => !known.has(n) && !known.has(n.replace(/_(bucket|sum|count)$/, '')));
      assert.deepEqual(unknown, [], 'dashboard metrics not in src/telemetry/metrics.ts');
    });
  });
}

test('GPU overlay: nvidia.com/gpu, the TensorRT configs of deploy/triton/tensorrt as the model repository, a trtexec Job per plan', () => {
  const { objects } = render('overlays/gpu');
  const pod = one(objects, 'Deployment').spec.template.spec;
  const triton = (pod.containers as Obj[]).find((c) => c.name === 'triton')!;
  assert.equal(String(triton.resources.limits['nvidia.com/gpu']), '1');
  const cmVolume = (pod.volumes as Obj[]).find((v) => v.configMap?.name?.startsWith('triton-tensorrt-configs'))!;
  assert.ok(cmVolume, 'the TensorRT configs are a pod volume');
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmVolume.configMap.name)!;
  const trtDir = path.join(ROOT, 'deploy/triton/tensorrt');
  const models = readdirSync(trtDir, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'onnx').map((d) => d.name);
  assert.ok(models.length >= 2);
  const init = (pod.initContainers as Obj[]).map((c) => c.args.join('\n')).join('\n');
  const job = one(objects, 'Job');
  const jobScript = (job.spec.template.spec.containers as Obj[]).map((c) => [...(c.command ?? []), ...(c.args ?? [])].join('\n')).join('\n');
  for (const m of models) {
    assert.equal(cm.data[`${m}.config.pbtxt`], readFileSync(path.join(trtDir, m, 'config.pbtxt'), 'utf8'), `${m}: config in the ConfigMap differs from deploy/triton/tensorrt`);
    assert.equal(cm.data[`${m}.labels.txt`], readFileSync(path.join(trtDir, m, 'labels.txt'), 'utf8'));
    assert.match(readFileSync(path.join(trtDir, m, 'config.pbtxt'), 'utf8'), /platform: "tensorrt_plan"/);
    assert.ok(new RegExp(`trtexec [^\\n]*--saveEngine=/plans/${m}/1/model.plan`).test(jobScript), `the Job builds no plan for ${m}`);
    assert.ok(init.includes('for m in') && init.includes(m), `the model repository gets no ${m}`);
  }
  assert.ok((triton.volumeMounts as Obj[]).some((v) => v.mountPath === '/models') && triton.args.includes('--model-repository=/models'));
  assert.equal(String(job.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']), '1', 'plans are built on a GPU');
});

test('CPU overlay requests no GPU', () => {
  const { text } = render('overlays/cpu');
  assert.doesNotMatch(text, /nvidia\.com\/gpu:/);
});

test('the plain-HPA alternative validates too, within the partitions', () => {
  const text = readFileSync(path.join(ROOT, 'deploy/k8s/alternatives/hpa.yaml'), 'utf8');
  const res = validate(text);
  assert.deepEqual(res.results.map((r) => [r.kind, r.ok, r.error ?? '']), [['HorizontalPodAutoscaler', true, '']]);
  const hpa = YAML.parse(text) as Obj;
  const cm = render('overlays/gpu').objects.find((o) => o.kind === 'ConfigMap' && o.data?.['topology.yaml'])!;
  assert.ok(hpa.spec.maxReplicas <= (parseTopology(cm.data['topology.yaml'], 'topology', { FRAMEWIRE_BROKERS: 'k:9092' }).sources[0] as KafkaSourceConfig).partitions);
});

test('the validator is not a formality: a misspelt field, a missing lag threshold and a bad interval are rejected', () => {
  const { text } = render('overlays/gpu');
  const broken = text.replace('periodSeconds: 5', 'periodSecond: 5').replace('lagThreshold: "250"', 'lagTreshold: "250"').replace('interval: 15s', 'interval: 15 seconds');
  const failed = validate(broken).results.filter((r) => !r.ok).map((r) => r.kind).sort();
  assert.deepEqual(failed, ['Deployment', 'ScaledObject', 'ServiceMonitor']);
});
