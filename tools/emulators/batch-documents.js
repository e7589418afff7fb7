// The transactional batch handler of @vercel/cosmosdb-server 1.0.1, as Azure Cosmos DB answers it.
// patch-cosmosdb-server.js copies this file over the package's lib/handler/batch-documents.js at
// `npm ci`. The package's own handler had three gaps the SDK's `execute_item_batch` meets at once:
// - it read each operation's partition key from the operation, where the SDK sends one for the whole
//   batch in the `x-ms-documentdb-partitionkey` header (every operation failed to parse);
// - it refused `Patch` (with its `condition`, the filter predicate);
// - an atomic batch that failed kept the writes before the failing operation.
// Here every operation of an atomic batch is undone when one fails, that one answers its own status,
// the others 424 (Failed Dependency), and the response is 207 (Multi-Status), as in Cosmos.
// The server runs one request at a time between awaits, so no other request sees a batch half done.
"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
const documentOperations = require("./_document-operations");
const patchOperations = require("./_patch-operations");
const json = require("../json").default;
const trueHeader = require("../true-header").default;
const getPartitionFromHeader = require("../utils/get-partition-from-header").default;
const { parsePartitionKey } = require("../utils/get-partition-from-header");

const APPLY = {
  Create: documentOperations.createOperation,
  Upsert: documentOperations.upsertOperation,
  Read: documentOperations.readOperation,
  Delete: documentOperations.deleteOperation,
  Replace: documentOperations.replaceOperation,
  Patch: (collection, input) => patchOperations.patchOperation(collection, {
    id: input.id,
    partitionKey: input.partitionKey,
    ifMatch: input.ifMatch,
    operations: input.resourceBody ? input.resourceBody.operations : undefined,
    condition: input.resourceBody ? input.resourceBody.condition : undefined
  })
};

// Every document an operation may touch, as it was before the batch (null: it did not exist).
function remember(collection, before, input) {
  const id = input.id || (input.resourceBody && input.resourceBody.id);
  if (!id) return;
  const partition = parsePartitionKey(input.partitionKey, id);
  const key = JSON.stringify([partition, id]);
  if (!before.has(key)) {
    before.set(key, { id, partition, data: collection.document(id, partition).read() || null });
  }
}

function undo(collection, before) {
  for (const { id, partition, data } of before.values()) {
    if (collection.document(id, partition).read()) collection.documents.delete(id, partition);
    // eslint-disable-next-line no-underscore-dangle
    if (data) collection.documents._set(data); // the document as it was, its _etag and _ts too
  }
}

exports.default = async (account, req, res, { dbId, collId }) => {
  const body = await json(req);
  const isAtomic = trueHeader(req, "x-ms-cosmos-batch-atomic");
  const continueOnError = trueHeader(req, "x-ms-cosmos-batch-continue-on-error");
  const partitionKey = getPartitionFromHeader(req);
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) {
    res.statusCode = 404;
    return {};
  }
  if (!Array.isArray(body)) {
    res.statusCode = 400;
    return { message: "Invalid request body" };
  }
  const unknown = body.find(input => !input || !APPLY[input.operationType]);
  if (unknown !== undefined) {
    res.statusCode = 400;
    return { message: `Operation type '${unknown ? unknown.operationType : null}' is not supported in Batch.` };
  }
  const before = new Map();
  const results = [];
  let failed = -1;
  for (let i = 0; i < body.length; i += 1) {
    if (failed >= 0 && !continueOnError) break;
    const input = { partitionKey, ...body[i] };
    if (isAtomic) remember(collection, before, input);
    const result = APPLY[input.operationType](collection, input);
    if (result.statusCode >= 400 && failed < 0) failed = i;
    results.push(result);
  }
  if (failed >= 0 && isAtomic) undo(collection, before);
  res.statusCode = failed >= 0 ? 207 : 200;
  return body.map((_, i) => {
    const result = results[i];
    if (!result || (failed >= 0 && isAtomic && i !== failed)) return { statusCode: 424, requestCharge: 0 };
    if (result.statusCode >= 400) return { statusCode: result.statusCode, requestCharge: 0 };
    return {
      statusCode: result.statusCode,
      requestCharge: 1,
      eTag: result.body ? result.body._etag : undefined,
      resourceBody: result.body
    };
  });
};
