// oip_schema.js - validates JSON bodies against the Open Inference Protocol's OpenAPI schemas
// (../shared/oip/open_inference_rest.yaml, components.schemas, $refs resolved by Ajv).
//
// usage: node oip_schema.js OPENAPI.yaml
// Reads one JSON line per check from stdin, {"schema": "inference_response", "body": {...}},
// and answers one line each: {"ok": true} or {"ok": false, "errors": "..."}.
// Needs ajv@8 and js-yaml@4 (tests/integration/oip-deps.sh installs them into .cache/).
"use strict";
const fs = require("fs");
const readline = require("readline");
const yaml = require("js-yaml");
const Ajv = require("ajv");

const doc = yaml.load(fs.readFileSync(process.argv[2], "utf8"));
// OpenAPI 3.0 schema objects are JSON Schema; move them under "definitions" so that Ajv
// resolves "#/components/schemas/X" as "#/definitions/X".
const text = JSON.stringify(doc.components.schemas).split("#/components/schemas/").join("#/definitions/");
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema({ $id: "oip.json", definitions: JSON.parse(text) });
const validators = {};
for (const name of Object.keys(doc.components.schemas))
  validators[name] = ajv.compile({ $ref: "oip.json#/definitions/" + name });

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let out;
  try {
    const req = JSON.parse(line);
    const v = validators[req.schema];
    if (!v) out = { ok: false, errors: "no schema " + req.schema };
    else if (v(req.body)) out = { ok: true };
    else out = { ok: false, errors: ajv.errorsText(v.errors) };
  } catch (e) {
    out = { ok: false, errors: String(e) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
