// tests/deploy/validate.mjs - offline checks of deploy/: every manifest parses, renders
// (kubectl kustomize) and validates against the Kubernetes schemas, and what the manifests
// say about the server is true of the real server.
//
//   - built-in kinds: the kubernetes-models schemas (types, enums, required fields), plus a
//     strict pass that rejects fields the API does not have (as kubectl --validate=strict),
//     read from the same package's type declarations;
//   - ServiceMonitor: @kubernetes-models/prometheus-operator; ScaledObject:
//     @kubernetes-models/keda (both with the strict pass);
//   - ServingRuntime, InferenceService (no npm package has KServe's CRDs): the fields used
//     here against a list written from KServe's v1alpha1/v1beta1 types, and every
//     container in them against the core/v1 Container schema;
//   - prometheus-adapter rules: their shape, and each metricsQuery, templated as the
//     adapter does, run by a real Prometheus scraping the real server; the KEDA query too;
//   - cross-checks: probes name ports the container has and paths the running server
//     answers (ready: 200, then 503 after SIGTERM while live stays 200), the grace period
//     exceeds preStop + shutdown delay + drain timeout, selectors match pod labels, the
//     HPA's custom metric is one the server exports and the adapter serves.
// Prints PASS/FAIL/SKIP lines and "deploy: N passed, N failed, N skipped".
// Usage: node validate.mjs ROOT SERVER_BINARY
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const [ROOT, SERVER] = process.argv.slice(2);
const NM = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules");
let passed = 0, failed = 0, skipped = 0;
const ok = (name, detail = "") => { passed++; console.log(`PASS ${name}${detail ? ": " + detail : ""}`); };
const bad = (name, detail) => { failed++; console.log(`FAIL ${name}: ${detail}`); };
const skip = (name, why) => { skipped++; console.log(`SKIP: ${name}: ${why}`); };
const check = (name, cond, detail) => (cond ? ok(name, cond === true ? "" : detail) : bad(name, detail));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- rendering --------------------------------------------------------------------------

function kustomizeDirs() {
  const out = [];
  const walk = (d) => {
    if (fs.existsSync(path.join(d, "kustomization.yaml"))) out.push(d);
    for (const e of fs.readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(path.join(ROOT, "deploy"));
  return out.sort();
}

function haveKustomize() {
  try {
    execFileSync("kubectl", ["kustomize", "--help"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// Without kustomize: the resources a kustomization lists, patches not applied (said so).
function renderByHand(dir) {
  const k = YAML.parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
  const docs = [];
  for (const r of k.resources || []) {
    const p = path.join(dir, r);
    if (fs.statSync(p).isDirectory()) docs.push(...renderByHand(p));
    else docs.push(...YAML.parseAllDocuments(fs.readFileSync(p, "utf8")).map((d) => d.toJS()));
  }
  return docs.filter(Boolean);
}

// ---- schemas ----------------------------------------------------------------------------

const CORE = { "": "kubernetes-models", "monitoring.coreos.com": "@kubernetes-models/prometheus-operator", "keda.sh": "@kubernetes-models/keda" };

function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (CORE[group] && group) return `${CORE[group]}/${group}/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

// The fields of the first interface in a .d.ts file: name -> {ref: file of the type it
// names (recursed into), or null for leaves, maps and inline objects}.
const ifaceCache = new Map();
function fieldsOf(file) {
  if (ifaceCache.has(file)) return ifaceCache.get(file);
  const text = fs.readFileSync(file, "utf8");
  const imports = {};
  for (const m of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) {
    const spec = m[2].replace(/\.js$/, "");
    imports[m[1]] = spec.startsWith(".") ? path.resolve(path.dirname(file), spec + ".d.ts") : path.join(NM, spec + ".d.ts");
  }
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^export interface \w+/.test(l));
  const fields = {};
  for (let i = start + 1; i < lines.length && lines[i] !== "}"; i++) {
    const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
    if (!m) continue;
    const type = m[2];
    const ref = /^(?:Array<)?(I\w+)>?;$/.exec(type);
    fields[m[1]] = { ref: ref && imports[ref[1]] ? imports[ref[1]] : null };
  }
  ifaceCache.set(file, fields);
  return fields;
}

// Paths of fields that the type declarations do not have.
function unknownFields(obj, file, at = "") {
  const out = [];
  if (obj === null || typeof obj !== "object") return out;
  if (Array.isArray(obj)) {
    obj.forEach((x, i) => out.push(...unknownFields(x, file, `${at}[${i}]`)));
    return out;
  }
  const fields = fieldsOf(file);
  for (const [k, v] of Object.entries(obj)) {
    if (!(k in fields)) out.push(`${at}.${k}`);
    else if (fields[k].ref) out.push(...unknownFields(v, fields[k].ref, `${at}.${k}`));
  }
  return out;
}

async function validateBuiltin(doc) {
  const mod = modulePath(doc.apiVersion, doc.kind);
  let cls;
  try {
    cls = (await import(mod))[doc.kind];
  } catch {
    return [`no schema for ${doc.apiVersion} ${doc.kind}`];
  }
  const errs = [];
  try {
    new cls(doc).validate();
  } catch (e) {
    errs.push(e.message);
  }
  const extra = unknownFields(doc, path.join(NM, mod + ".d.ts"));
  if (extra.length) errs.push("unknown fields " + extra.join(", "));
  return errs;
}

// KServe: the fields of serving.kserve.io v1alpha1 ServingRuntimeSpec / v1beta1
// InferenceService that a manifest may use (KServe 0.11-0.15); containers go to the
// core/v1 Container schema.
const KSERVE = {
  ServingRuntime: {
    spec: ["supportedModelFormats", "protocolVersions", "multiModel", "disabled", "annotations", "labels",
      "containers", "volumes", "nodeSelector", "tolerations", "affinity", "imagePullSecrets", "replicas",
      "grpcEndpoint", "grpcDataEndpoint", "httpDataEndpoint", "storageHelper", "builtInAdapter",
      "workerSpec", "hostIPC"],
    required: ["containers"],
    modelFormat: ["name", "version", "autoSelect", "priority"],
    protocols: ["v1", "v2", "grpc-v1", "grpc-v2"],
  },
  predictor: ["model", "containers", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric",
    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels",
    "annotations", "deploymentStrategy", "serviceAccountName", "nodeSelector", "tolerations", "affinity",
    "volumes", "imagePullSecrets", "terminationGracePeriodSeconds", "securityContext", "initContainers",
    "priorityClassName", "runtimeClassName", "topologySpreadConstraints", "autoScaling"],
  model: ["modelFormat", "runtime", "protocolVersion", "storageUri", "storage"],
  scaleMetrics: ["cpu", "memory", "concurrency", "rps"],
};

async function containerErrors(c, at) {
  const { validate } = await import("kubernetes-models/_schemas/IoK8sApiCoreV1Container");
  const errs = validate(c) ? [] : [`${at}: ${JSON.stringify(validate.errors).slice(0, 300)}`];
  const extra = unknownFields(c, path.join(NM, "kubernetes-models/v1/Container.d.ts"), at);
  if (extra.length) errs.push("unknown fields " + extra.join(", "));
  return errs;
}

async function validateKserve(doc) {
  const errs = [];
  const keys = (o, allowed, at) => {
    for (const k of Object.keys(o || {})) if (!allowed.includes(k)) errs.push(`${at}.${k}: not a field`);
  };
  if (!doc.metadata?.name) errs.push("metadata.name missing");
  const s = doc.spec || {};
  if (doc.kind === "ServingRuntime") {
    if (doc.apiVersion !== "serving.kserve.io/v1alpha1") errs.push("apiVersion " + doc.apiVersion);
    const K = KSERVE.ServingRuntime;
    keys(s, K.spec, "spec");
    for (const r of K.required) if (!(r in s)) errs.push(`spec.${r} missing`);
    for (const [i, f] of (s.supportedModelFormats || []).entries()) {
      keys(f, K.modelFormat, `spec.supportedModelFormats[${i}]`);
      if (typeof f.name !== "string") errs.push(`spec.supportedModelFormats[${i}].name missing`);
    }
    for (const p of s.protocolVersions || []) if (!K.protocols.includes(p)) errs.push("protocol " + p);
    for (const [i, c] of (s.containers || []).entries()) errs.push(...(await containerErrors(c, `spec.containers[${i}]`)));
    if (!(s.containers || []).some((c) => c.name === "kserve-container"))
      errs.push("no container named kserve-container");
  } else {
    if (doc.apiVersion !== "serving.kserve.io/v1beta1") errs.push("apiVersion " + doc.apiVersion);
    keys(s, ["predictor", "transformer", "explainer"], "spec");
    const p = s.predictor;
    if (!p) errs.push("spec.predictor missing");
    keys(p, KSERVE.predictor, "spec.predictor");
    if (p?.scaleMetric && !KSERVE.scaleMetrics.includes(p.scaleMetric)) errs.push("scaleMetric " + p.scaleMetric);
    if (p?.model) {
      const { modelFormat, runtime, protocolVersion, storageUri, storage, ...container } = p.model;
      if (!modelFormat?.name) errs.push("spec.predictor.model.modelFormat.name missing");
      if (protocolVersion && !KSERVE.ServingRuntime.protocols.includes(protocolVersion))
        errs.push("protocolVersion " + protocolVersion);
      void runtime, storageUri, storage;
      errs.push(...(await containerErrors({ name: "kserve-container", ...container }, "spec.predictor.model")));
    }
  }
  return errs;
}

const validateDoc = (doc) =>
  doc.apiVersion?.startsWith("serving.kserve.io/") ? validateKserve(doc) : validateBuiltin(doc);

// ---- the running server ----------------------------------------------------------------

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

async function get(port, p) {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(3000) });
    return { status: r.status, text: await r.text() };
  } catch {
    return { status: null, text: "" };
  }
}

async function startServer(extra = []) {
  const port = await freePort();
  const p = spawn(SERVER, ["--listen", `127.0.0.1:${port}`, "--synth", "g3=3:0.5", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  p.stderr.on("data", (d) => (log += d));
  const exited = new Promise((res) => p.on("exit", (code) => res(code)));
  for (let i = 0; i < 300; i++) {
    if ((await get(port, "/readyz")).status === 200) return { port, p, exited, log: () => log };
    await sleep(50);
  }
  p.kill("SIGKILL");
  throw new Error("the server did not get ready: " + log);
}

function serverDefault(key) {
  const help = execFileSync(SERVER, ["--help"], { encoding: "utf8" });
  const i = help.indexOf(`SHUFFLENET_${key.toUpperCase()}`);
  const m = /\(default (\d+)\)/.exec(help.slice(i, i + 600));
  return m ? Number(m[1]) : null;
}

// ---- cross-checks on one rendered set -----------------------------------------------------

function podSpecs(docs) {
  const out = [];
  for (const d of docs) {
    if (d.kind === "Deployment")
      out.push({ name: `Deployment/${d.metadata.name}`, labels: d.spec.template.metadata?.labels || {},
        grace: d.spec.template.spec.terminationGracePeriodSeconds ?? 30, containers: d.spec.template.spec.containers });
    if (d.kind === "ServingRuntime") {
      const isvc = docs.find((x) => x.kind === "InferenceService" && x.spec.predictor.model?.runtime === d.metadata.name);
      out.push({ name: `ServingRuntime/${d.metadata.name}`, labels: {},
        grace: isvc?.spec.predictor.terminationGracePeriodSeconds ?? 30, containers: d.spec.containers });
    }
  }
  return out;
}

const env = (c, k) => (c.env || []).find((e) => e.name === k)?.value;

function graceChecks(set, docs) {
  for (const ps of podSpecs(docs))
    for (const c of ps.containers) {
      const cmd = c.lifecycle?.preStop?.exec?.command || [];
      const pre = cmd[0] === "sleep" ? Number(cmd[1]) : c.lifecycle?.preStop?.sleep?.seconds ?? 0;
      const delay = Number(env(c, "SHUFFLENET_SHUTDOWN_DELAY_MS") ?? serverDefault("shutdown_delay_ms")) / 1000;
      const drain = Number(env(c, "SHUFFLENET_DRAIN_TIMEOUT_MS") ?? serverDefault("drain_timeout_ms")) / 1000;
      check(`${set} ${ps.name}: terminationGracePeriodSeconds > preStop + shutdown delay + drain timeout`,
        ps.grace > pre + delay + drain, `${ps.grace} s vs ${pre} + ${delay} + ${drain} = ${pre + delay + drain} s`);
      check(`${set} ${ps.name}: a preStop hook`, pre > 0, `preStop ${pre} s`);
    }
}

function probes(docs) {
  const out = [];
  for (const ps of podSpecs(docs))
    for (const c of ps.containers)
      for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const h = c[kind]?.httpGet;
        if (h) out.push({ where: `${ps.name} ${c.name}`, kind, path: h.path, port: h.port, container: c });
      }
  return out;
}

function staticChecks(set, docs) {
  const sel = (m, labels) => Object.entries(m || {}).every(([k, v]) => labels[k] === v);
  const pods = podSpecs(docs);
  for (const pr of probes(docs)) {
    const ports = pr.container.ports || [];
    const portOk = typeof pr.port === "string" ? ports.some((p) => p.name === pr.port) : ports.some((p) => p.containerPort === pr.port);
    check(`${set} ${pr.where} ${pr.kind}: port ${pr.port} is a container port`, portOk, JSON.stringify(ports));
  }
  for (const ps of pods)
    for (const c of ps.containers) {
      const listen = env(c, "SHUFFLENET_LISTEN");
      if (listen)
        check(`${set} ${ps.name}: SHUFFLENET_LISTEN is the container port`, (c.ports || []).some((p) => listen.endsWith(":" + p.containerPort)), listen);
      const rp = c.readinessProbe?.httpGet?.path, lp = c.livenessProbe?.httpGet?.path;
      if (rp && lp) check(`${set} ${ps.name}: liveness and readiness differ (a draining pod is not killed)`, rp !== lp, `${rp} ${lp}`);
      const sc = c.securityContext || {};
      if (ps.name.startsWith("Deployment"))
        check(`${set} ${ps.name}: non-root, read-only root, no privilege escalation, limits`,
          sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false &&
          c.resources?.limits?.cpu && c.resources?.limits?.memory, JSON.stringify(sc));
    }
  for (const d of docs) {
    if (d.kind === "Service" || d.kind === "PodDisruptionBudget") {
      const s = d.kind === "Service" ? d.spec.selector : d.spec.selector.matchLabels;
      check(`${set} ${d.kind}/${d.metadata.name} selects the pods`, pods.some((p) => sel(s, p.labels)), JSON.stringify(s));
    }
    if (d.kind === "HorizontalPodAutoscaler" || d.kind === "ScaledObject") {
      const t = d.spec.scaleTargetRef;
      check(`${set} ${d.kind}/${d.metadata.name} targets a Deployment here`, docs.some((x) => x.kind === "Deployment" && x.metadata.name === t.name), t.name);
    }
    if (d.kind === "ServiceMonitor") {
      const svc = docs.find((x) => x.kind === "Service" && sel(d.spec.selector.matchLabels, x.metadata.labels || {}));
      check(`${set} ServiceMonitor selects the Service and names its port`,
        svc && d.spec.endpoints.every((e) => svc.spec.ports.some((p) => p.name === e.port)), JSON.stringify(d.spec.endpoints));
    }
  }
}

// ---- main -----------------------------------------------------------------------------------

const rendered = {};
const useKustomize = haveKustomize();
if (!useKustomize) skip("kustomize", "kubectl kustomize not found: each kustomization's resources are validated, overlay patches are not applied");
for (const dir of kustomizeDirs()) {
  const set = path.relative(ROOT, dir);
  try {
    const text = useKustomize ? execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" }) : null;
    rendered[set] = text ? YAML.parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean) : renderByHand(dir);
    ok(`${set}: renders`, `${rendered[set].length} objects (${rendered[set].map((d) => d.kind).join(", ")})`);
  } catch (e) {
    bad(`${set}: renders`, String(e.stderr || e.message).slice(0, 500));
  }
}
// every YAML file under deploy/ parses (patches included); HAProxy's config is checked by haproxy -c
const yamlFiles = [];
const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : /\.ya?ml$/.test(e.name) && yamlFiles.push(path.join(d, e.name))));
walk(path.join(ROOT, "deploy"));
walk(path.join(ROOT, "docker"));
let yamlErrs = [];
for (const f of yamlFiles)
  for (const d of YAML.parseAllDocuments(fs.readFileSync(f, "utf8")))
    if (d.errors.length) yamlErrs.push(`${path.relative(ROOT, f)}: ${d.errors[0].message}`);
check(`every YAML file under deploy/ and docker/ parses`, yamlErrs.length === 0, yamlErrs.length ? yamlErrs.join("; ") : `${yamlFiles.length} files`);

for (const [set, docs] of Object.entries(rendered)) {
  for (const d of docs) {
    const errs = await validateDoc(d);
    check(`${set} ${d.kind}/${d.metadata?.name}: schema`, errs.length === 0, errs.join("; "));
  }
  staticChecks(set, docs);
  graceChecks(set, docs);
}

// docker/compose.scale.yaml: the files it mounts exist, the stop grace covers delay + drain
{
  const f = path.join(ROOT, "docker/compose.scale.yaml");
  const c = YAML.parse(fs.readFileSync(f, "utf8"));
  const mounts = Object.values(c.services).flatMap((s) => s.volumes || []).map((v) => v.split(":")[0]).filter((v) => v.startsWith("."));
  const missing = mounts.filter((m) => !fs.existsSync(path.resolve(path.dirname(f), m)) && !m.includes("models"));
  check("docker/compose.scale.yaml: mounted files exist", missing.length === 0, missing.join(", ") || mounts.join(", "));
  const sv = c.services.shufflenet, e = sv.environment;
  const grace = Number(/^(\d+)s$/.exec(sv.stop_grace_period)?.[1]);
  const need = (Number(e.SHUFFLENET_SHUTDOWN_DELAY_MS) + Number(e.SHUFFLENET_DRAIN_TIMEOUT_MS)) / 1000;
  check("docker/compose.scale.yaml: stop_grace_period > shutdown delay + drain timeout", grace > need, `${grace} s vs ${need} s`);
  check("docker/compose.scale.yaml: HAProxy finds the replicas by the service name", c.services.haproxy.environment.SN_BACKEND.startsWith("shufflenet:"), "");
}

// The validator itself catches mistakes: broken copies of the manifests must fail.
const find = (set, kind) => rendered[set]?.find((d) => d.kind === kind);
const mutate = (doc, f) => { const d = structuredClone(doc); f(d); return d; };
const c0 = (d) => d.spec.template.spec.containers[0];
const broken = {
  "a misspelt probe": [find("deploy/k8s/base", "Deployment"), (d) => { c0(d).readinesProbe = c0(d).readinessProbe; delete c0(d).readinessProbe; }],
  "a string containerPort": [find("deploy/k8s/base", "Deployment"), (d) => { c0(d).ports[0].containerPort = "8080"; }],
  "a bad enum": [find("deploy/k8s/base", "Deployment"), (d) => { c0(d).imagePullPolicy = "Sometimes"; }],
  "a Deployment without selector": [find("deploy/k8s/base", "Deployment"), (d) => { delete d.spec.selector; }],
  "an HPA metric without a target": [find("deploy/k8s/base", "HorizontalPodAutoscaler"), (d) => { delete d.spec.metrics[1].pods.target; }],
  "a misspelt ScaledObject field": [find("deploy/k8s/overlays/keda", "ScaledObject"), (d) => { d.spec.minReplicas = 2; }],
  "a misspelt ServiceMonitor field": [find("deploy/k8s/overlays/production", "ServiceMonitor"), (d) => { d.spec.endpoints[0].intervall = "5s"; }],
  "a misspelt ServingRuntime field": [find("deploy/kserve", "ServingRuntime"), (d) => { d.spec.supportedModelFormat = d.spec.supportedModelFormats; }],
  "a bad ServingRuntime container": [find("deploy/kserve", "ServingRuntime"), (d) => { d.spec.containers[0].ports[0].containerPort = "x"; }],
  "a bad InferenceService model": [find("deploy/kserve", "InferenceService"), (d) => { d.spec.predictor.model.resource = {}; }],
};
for (const [what, [doc, f]] of Object.entries(broken))
  if (!doc) bad(`the validator rejects ${what}`, "the manifest to break is missing");
  else check(`the validator rejects ${what}`, (await validateDoc(mutate(doc, f))).length > 0, "accepted");

// Against the real server: probe paths, readiness vs liveness while shutting down, the
// metrics the autoscalers use, the adapter's and KEDA's queries in a real Prometheus.
const allProbes = Object.values(rendered).flatMap(probes);
const adapter = YAML.parse(fs.readFileSync(path.join(ROOT, "deploy/k8s/prometheus-adapter/values.yaml"), "utf8"));
const rules = adapter.rules.custom;
if (!SERVER || !fs.existsSync(SERVER)) {
  skip("probes against the server", "no server binary");
} else {
  const S = await startServer(["--shutdown-delay-ms", "20000"]);
  try {
    const metrics = (await get(S.port, "/metrics")).text;
    const paths = [...new Set(allProbes.map((p) => p.path))];
    for (const p of paths) {
      const st = (await get(S.port, p)).status;
      check(`probe path ${p} answers 200 on a ready server`, st === 200, `${st} (${allProbes.filter((x) => x.path === p).map((x) => x.where + " " + x.kind).join(", ")})`);
    }
    // metrics named by the autoscalers exist
    for (const [set, docs] of Object.entries(rendered))
      for (const d of docs) {
        const names = d.kind === "HorizontalPodAutoscaler" ? d.spec.metrics.filter((m) => m.type === "Pods").map((m) => m.pods.metric.name)
          : d.kind === "ScaledObject" ? d.spec.triggers.filter((t) => t.type === "prometheus").map((t) => /(shufflenet_\w+)/.exec(t.metadata.query)?.[1]) : [];
        for (const n of names) {
          check(`${set} ${d.kind}: metric ${n} is exported by the server`, new RegExp(`^${n}[ {]`, "m").test(metrics), n);
          if (d.kind === "HorizontalPodAutoscaler")
            check(`${set} HPA metric ${n} is served by a prometheus-adapter rule`, rules.some((r) => r.name.as === n), n);
        }
      }
    // shutting down: not ready, still live
    S.p.kill("SIGTERM");
    await sleep(300);
    const ready = allProbes.filter((p) => p.kind !== "livenessProbe").map((p) => p.path);
    const live = allProbes.filter((p) => p.kind === "livenessProbe").map((p) => p.path);
    for (const p of new Set(ready)) check(`after SIGTERM ${p} (readiness) answers 503`, (await get(S.port, p)).status === 503, "");
    for (const p of new Set(live)) check(`after SIGTERM ${p} (liveness) still answers 200`, (await get(S.port, p)).status === 200, "");
    S.p.kill("SIGTERM"); // a second signal ends the delay
    check("the server exits 0 after the probes", (await S.exited) === 0, S.log().slice(-500));
  } finally {
    S.p.kill("SIGKILL");
  }
  await prometheusChecks();
}

async function prometheusChecks() {
  let prom = null;
  try {
    execFileSync("prometheus", ["--version"], { stdio: "ignore" });
  } catch {
    return skip("adapter and KEDA queries in Prometheus", "prometheus not installed (Debian package prometheus)");
  }
  const S = await startServer(["--shutdown-delay-ms", "0"]);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sn-deploy-"));
  try {
    const pport = await freePort();
    // the labels Kubernetes service discovery gives a pod's series
    fs.writeFileSync(path.join(tmp, "p.yml"), YAML.stringify({
      global: { scrape_interval: "1s" },
      scrape_configs: [{ job_name: "shufflenet", static_configs: [{ targets: [`127.0.0.1:${S.port}`], labels: { namespace: "shufflenet", pod: "shufflenet-7d4b9c-x2x9q" } }] }],
    }));
    prom = spawn("prometheus", [`--config.file=${tmp}/p.yml`, `--storage.tsdb.path=${tmp}/data`, `--web.listen-address=127.0.0.1:${pport}`], { stdio: "ignore" });
    const query = async (q) => {
      const r = await get(pport, "/api/v1/query?query=" + encodeURIComponent(q));
      try { return JSON.parse(r.text); } catch { return null; }
    };
    const queries = rules.map((r) => ({
      what: `prometheus-adapter rule ${r.name.as}`,
      q: r.metricsQuery.replaceAll("<<.Series>>", r.seriesQuery.replace(/\{.*$/, "").replace(/'/g, ""))
        .replaceAll("<<.LabelMatchers>>", 'namespace="shufflenet",pod=~"shufflenet-7d4b9c-x2x9q"')
        .replaceAll("<<.GroupBy>>", "pod"),
      want: (res) => res.length === 1 && res[0].metric.pod === "shufflenet-7d4b9c-x2x9q",
    }));
    for (const docs of Object.values(rendered))
      for (const d of docs)
        if (d.kind === "ScaledObject")
          for (const t of d.spec.triggers.filter((t) => t.type === "prometheus"))
            queries.push({ what: `KEDA ScaledObject query`, q: t.metadata.query, want: (res) => res.length === 1 });
    for (const rule of rules) {
      const seriesOk = /^'?\w+\{.*\}'?$/.test(rule.seriesQuery) && rule.resources?.overrides?.pod?.resource === "pod" && rule.name?.as && rule.metricsQuery;
      check(`prometheus-adapter rule ${rule.name?.as}: seriesQuery, resources, name, metricsQuery`, !!seriesOk, JSON.stringify(rule));
    }
    for (const { what, q, want } of queries) {
      let last = null;
      for (let i = 0; i < 100; i++) {
        last = await query(q);
        if (last?.status === "success" && want(last.data.result)) break;
        if (last?.status === "error") break;
        await sleep(200);
      }
      check(`${what} returns the pod's value in Prometheus`, last?.status === "success" && want(last.data.result), `${q} -> ${JSON.stringify(last).slice(0, 300)}`);
    }
  } finally {
    if (prom) prom.kill("SIGTERM");
    S.p.kill("SIGINT");
    await S.exited;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

console.log(`deploy: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
