// Validates AsyncAPI documents with the official parser; prints its diagnostics as JSON.
//
// Usage: node validate.mjs FILE...
// Prints one JSON object: {"<file>": [{"severity", "code", "message", "path"}, ...], ...}
// (severity 0 error, 1 warning, 2 information, 3 hint). Exits 1 when any document has an error.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
const report = {};
let errors = 0;
for (const file of process.argv.slice(2)) {
  const diagnostics = await parser.validate(await readFile(file, "utf8"), { source: file });
  report[file] = diagnostics.map((d) => ({
    severity: d.severity,
    code: String(d.code),
    message: d.message,
    path: d.path.join("/"),
  }));
  errors += diagnostics.filter((d) => d.severity === 0).length;
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
process.exit(errors > 0 ? 1 : 0);
