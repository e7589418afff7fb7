// Run by `npm ci` (package.json postinstall): two fixes to @vercel/cosmosdb-server 1.0.1, so the local
// emulator answers as Azure Cosmos DB does. Idempotent; fails loudly if the package changed.
// - A point read of a document that does not exist crashed its handler ("Cannot read properties of
//   undefined") and answered 500; Cosmos answers 404, which the SDK raises as CosmosResourceNotFoundError.
// - Its transactional batch handler is replaced by batch-documents.js (why there).
"use strict";
const fs = require("fs");
const path = require("path");

const handlers = path.join(__dirname, "..", "..", "node_modules", "@vercel", "cosmosdb-server", "lib", "handler");
const file = path.join(handlers, "read-document.js");
const before = "        const data = collection.document(docId, parsedPartitionKey).read();\n";
const fixed = before + "        if (!data) {\n" +
  "            res.statusCode = 404;\n" +
  "            return { code: \"NotFound\", message: \"Entity with the specified id does not exist in the system.\" };\n" +
  "        }\n";

const source = fs.readFileSync(file, "utf8");
if (!source.includes(fixed)) {
  if (!source.includes(before)) {
    console.error(`${file}: the read handler is not the one this fix was written for; see tools/emulators/`);
    process.exit(1);
  }
  fs.writeFileSync(file, source.replace(before, fixed));
}

const batch = path.join(handlers, "batch-documents.js");
const ours = fs.readFileSync(path.join(__dirname, "batch-documents.js"), "utf8");
const theirs = fs.readFileSync(batch, "utf8");
if (theirs !== ours) {
  const original = theirs.includes("case types_1.BulkOperationType.Replace:") && !theirs.includes("BulkOperationType.Patch");
  if (!original && !theirs.startsWith(ours.split("\n")[0])) { // neither the package's nor an older copy of ours
    console.error(`${batch}: the batch handler is not the one batch-documents.js replaces; see tools/emulators/`);
    process.exit(1);
  }
  fs.writeFileSync(batch, ours);
}
