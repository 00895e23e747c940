// CQL -> ELM JSON with the official cqframework translator (npm @cqframework/cql), the FHIR
// 4.0.1 (and 4.0.0) model info shipped in cql-exec-fhir, and UCUM from @lhncbc/ucum-lhc.
//
//   node translate.mjs [--check] [--path DIR]... FILE.cql...
//       writes FILE.json beside each FILE.cql (with --check: writes nothing, exits 1 and names
//       every file whose committed ELM differs from a fresh translation). Included libraries are
//       looked up by name in the folders of the given files and in every --path folder.
//   node translate.mjs --stdin
//       reads {"sources": {"<library name>": "<cql>", ...}, "translate": ["<name>", ...]} and
//       writes {"elm": {"<name>": <ELM object>}, "errors": {"<name>": ["..."]}} (used by tests).
//
// Any translation error (severity error) fails the run: ELM is never written from broken CQL.

import { readFileSync, writeFileSync, readdirSync, existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ucum from "@lhncbc/ucum-lhc";

// The translator's logging (kotlin-logging) prints to stdout, which carries our results: while
// translating, anything written to stdout goes to stderr; `emit` writes real output.
const stdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => process.stderr.write(chunk, ...rest);
console.log = (...items) => console.error(...items);
const emit = (text) => stdoutWrite(text);
const {
  CqlCompilerOptions,
  CqlTranslator,
  LibraryManager,
  ModelManager,
  createLibrarySourceProvider,
  createModelInfoProvider,
  createUcumService,
  stringAsSource,
} = await import("@cqframework/cql/cql-to-elm");
const { SystemModelInfoProvider } = await import("@cqframework/cql/cql");

const HERE = dirname(fileURLToPath(import.meta.url));
const MODEL_INFOS = join(HERE, "node_modules", "cql-exec-fhir", "lib", "modelInfos");
const UCUM = ucum.UcumLhcUtils.getInstance();

function modelInfo(id, _system, version) {
  if (id !== "FHIR") return null;
  const file = join(MODEL_INFOS, `fhir-modelinfo-${version || "4.0.1"}.xml`);
  return existsSync(file) ? stringAsSource(readFileSync(file, "utf8")) : null;
}

function ucumService() {
  return createUcumService(
    (value, from, to) => {
      const result = UCUM.convertUnitTo(from, Number(value), to);
      if (result.status !== "succeeded") throw new Error(`cannot convert ${from} to ${to}`);
      return String(result.toVal);
    },
    (unit) => {
      const result = UCUM.validateUnitString(unit, true);
      return result.status === "valid" ? null : (result.msg || []).join("; ") || "invalid unit";
    },
    () => {
      throw new Error("UCUM multiplication is not used by Greenlight libraries");
    },
    () => {
      throw new Error("UCUM division is not used by Greenlight libraries");
    },
  );
}

/** A fresh translator environment whose library sources come from `lookup(name, version)`. */
function environment(lookup) {
  const models = new ModelManager();
  models.modelInfoLoader.registerModelInfoProvider(new SystemModelInfoProvider());
  models.modelInfoLoader.registerModelInfoProvider(createModelInfoProvider(modelInfo));
  // The translator's defaults without EnableAnnotations: annotations repeat the CQL source
  // inside the ELM (the Library already carries the CQL), which would triple every package.
  const options = new CqlCompilerOptions().withOptions([
    CqlCompilerOptions.Options.EnableLocators,
    CqlCompilerOptions.Options.DisableListDemotion,
    CqlCompilerOptions.Options.DisableListPromotion,
  ]);
  const libraries = new LibraryManager(models, options, undefined, ucumService());
  libraries.librarySourceLoader.registerProvider(
    createLibrarySourceProvider((id, _system, version) => {
      const text = lookup(id, version);
      return text == null ? null : stringAsSource(text);
    }),
  );
  return libraries;
}

function translate(cql, lookup, libraries = environment(lookup)) {
  const translator = CqlTranslator.fromText(cql, libraries);
  const errors = translator.errors
    .asJsReadonlyArrayView()
    .map((e) => {
      // TrackBack has no exported accessors; its toString names startLine and startChar.
      const track = /startLine=(\d+), startChar=(\d+)/.exec(String(e.locator ?? ""));
      const where = track ? ` (line ${track[1]}:${track[2]})` : "";
      return `${e.message}${where}`;
    });
  return { json: translator.toJson(), errors };
}

/** Pretty, stable JSON text with a trailing newline (what is committed). */
function pretty(json) {
  return JSON.stringify(JSON.parse(json), null, 2) + "\n";
}

function libraryName(cql) {
  const match = /^\s*library\s+("?)([A-Za-z_][A-Za-z0-9_]*)\1/m.exec(cql);
  return match ? match[2] : null;
}

function fileLookup(folders) {
  const index = new Map();
  for (const folder of folders) {
    for (const entry of readdirSync(folder)) {
      if (!entry.endsWith(".cql")) continue;
      const path = join(folder, entry);
      const name = libraryName(readFileSync(path, "utf8"));
      if (name && !index.has(name)) index.set(name, path);
    }
  }
  return (id) => (index.has(id) ? readFileSync(index.get(id), "utf8") : null);
}

function runFiles(args) {
  let check = false;
  const paths = [];
  const files = [];
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === "--check") check = true;
    else if (args[i] === "--path") paths.push(resolve(args[(i += 1)]));
    else files.push(resolve(args[i]));
  }
  const lookup = fileLookup([...new Set([...files.map((f) => dirname(f)), ...paths])]);
  const libraries = environment(lookup); // shared: an included library is compiled once
  let failed = false;
  for (const file of files) {
    const { json, errors } = translate(readFileSync(file, "utf8"), lookup, libraries);
    if (errors.length) {
      failed = true;
      for (const error of errors) console.error(`${file}: ${error}`);
      continue;
    }
    const target = file.replace(/\.cql$/, ".json");
    const text = pretty(json);
    if (check) {
      const committed = existsSync(target) ? readFileSync(target, "utf8") : null;
      if (committed !== text) {
        failed = true;
        console.error(`${target}: differs from a fresh translation of ${basename(file)}`);
      }
    } else {
      writeFileSync(target, text);
      emit(`${target}\n`);
    }
  }
  process.exit(failed ? 1 : 0);
}

function runStdin() {
  const request = JSON.parse(readFileSync(0, "utf8"));
  const sources = request.sources || {};
  const lookup = (id) => sources[id] ?? null;
  const libraries = environment(lookup);
  const out = { elm: {}, errors: {} };
  for (const name of request.translate || Object.keys(sources)) {
    const { json, errors } = translate(sources[name], lookup, libraries);
    if (errors.length) out.errors[name] = errors;
    else out.elm[name] = JSON.parse(json);
  }
  emit(JSON.stringify(out));
}

const args = process.argv.slice(2);
if (args[0] === "--stdin") runStdin();
else if (args.length === 0) {
  console.error("usage: node translate.mjs [--check] [--path DIR]... FILE.cql... | --stdin");
  process.exit(2);
} else runFiles(args);
