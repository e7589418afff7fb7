// Run by `npm ci` (package.json postinstall): one fix to @vercel/cosmosdb-server 1.0.1, so the local
// emulator answers as Azure Cosmos DB does. A point read of a document that does not exist crashed
// its handler ("Cannot read properties of undefined") and answered 500; Cosmos answers 404, which the
// SDK raises as CosmosResourceNotFoundError. Idempotent; fails loudly if the package changed.
"use strict";
const fs = require("fs");
const path = require("path");

const file = path.join(__dirname, "..", "..", "node_modules", "@vercel", "cosmosdb-server", "lib", "handler",
  "read-document.js");
const before = "        const data = collection.document(docId, parsedPartitionKey).read();\n";
const fixed = before + "        if (!data) {\n" +
  "            res.statusCode = 404;\n" +
  "            return { code: \"NotFound\", message: \"Entity with the specified id does not exist in the system.\" };\n" +
  "        }\n";

const source = fs.readFileSync(file, "utf8");
if (source.includes(fixed)) {
  process.exit(0);
}
if (!source.includes(before)) {
  console.error(`${file}: the read handler is not the one this fix was written for; see tools/emulators/`);
  process.exit(1);
}
fs.writeFileSync(file, source.replace(before, fixed));
