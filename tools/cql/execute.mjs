// Executes translated CQL (ELM JSON) against FHIR R4 patient bundles with cql-execution and
// cql-exec-fhir, as a DTR client would to pre-populate a Questionnaire.
//
//   node execute.mjs < request.json > results.json
//
// request: {
//   "libraries": {"<name>": <ELM object>, ...},   // the main library and everything it includes
//   "main": "<name>",
//   "fhirVersion": "4.0.1",                         // or "4.0.0" for 4.0.0-model libraries
//   "valueSets": [<FHIR ValueSet with expansion>, ...],
//   "executionDateTime": "2025-06-01T12:00:00.000Z",  // Today() / Now() (optional)
//   "parameters": {"<name>": <value>},              // optional library parameters
//   "cases": [{"id": "<case>", "bundle": <FHIR Bundle with one Patient>}],
//   "expressions": ["<define>", ...]                // optional: only these results
// }
// result: {"<case>": {"<define>": <JSON value>}} where Codes, Concepts, Quantities, Ratios,
// Intervals, Dates and DateTimes are turned into plain JSON (see `plain`), FHIR resources into
// their JSON, and functions are left out.

import { readFileSync } from "node:fs";
import cql from "cql-execution";
import cqlfhir from "cql-exec-fhir";

function codeService(valueSets) {
  const expansions = {};
  for (const vs of valueSets || []) {
    const codes = (vs.expansion?.contains || []).map((c) => ({
      code: c.code,
      system: c.system,
      version: c.version,
    }));
    expansions[vs.url] = { [vs.version || ""]: codes };
  }
  return new cql.CodeService(expansions);
}

function patientSource(version) {
  return version === "4.0.0" ? cqlfhir.PatientSource.FHIRv400() : cqlfhir.PatientSource.FHIRv401();
}

/** A CQL runtime value as plain JSON. */
function plain(value) {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value !== "object") return value;
  if (value instanceof cql.Code) {
    const out = { system: value.system ?? null, code: value.code ?? null };
    if (value.display != null) out.display = value.display;
    if (value.version != null) out.version = value.version;
    return { Code: out };
  }
  if (value instanceof cql.Concept) {
    return { Concept: { codes: (value.codes || []).map(plain), display: value.display ?? null } };
  }
  if (value instanceof cql.Quantity) return { Quantity: { value: value.value, unit: value.unit } };
  if (value instanceof cql.Ratio) {
    return { Ratio: { numerator: plain(value.numerator), denominator: plain(value.denominator) } };
  }
  if (value instanceof cql.Interval) {
    return {
      Interval: {
        low: plain(value.low),
        high: plain(value.high),
        lowClosed: value.lowClosed,
        highClosed: value.highClosed,
      },
    };
  }
  if (value instanceof cql.DateTime) return { DateTime: value.toString() };
  if (value instanceof cql.Date) return { Date: value.toString() };
  if (value.isTime && value.isTime()) return { Time: value.toString() };
  if (typeof value._json === "object" && typeof value.getTypeInfo === "function") {
    return { FHIR: value._json };
  }
  const out = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "function") out[key] = plain(item);
  }
  return out;
}

async function run(request) {
  const repository = new cql.Repository(request.libraries);
  const main = repository.resolve(request.main, request.libraries[request.main]?.library?.identifier?.version);
  if (!main) throw new Error(`library ${request.main} is not in the request`);
  const executor = new cql.Executor(main, codeService(request.valueSets), request.parameters || {});
  const moment = request.executionDateTime
    ? cql.DateTime.parse(request.executionDateTime)
    : undefined;
  const wanted = request.expressions ? new Set(request.expressions) : null;
  const results = {};
  for (const item of request.cases || []) {
    const source = patientSource(request.fhirVersion);
    source.loadBundles([item.bundle]);
    const outcome = await executor.exec(source, moment);
    const byPatient = Object.values(outcome.patientResults)[0] || {};
    const values = {};
    for (const [name, value] of Object.entries(byPatient)) {
      if (name === "Patient" && !(wanted && wanted.has(name))) continue;
      if (wanted && !wanted.has(name)) continue;
      values[name] = plain(value);
    }
    results[item.id] = values;
  }
  return results;
}

const request = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(await run(request)));
