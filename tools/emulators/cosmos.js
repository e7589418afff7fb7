// The local Cosmos DB emulator (@vercel/cosmosdb-server, plain HTTP), with its connections kept alive as
// Azure Cosmos DB keeps them. The package's own CLI answers every request with `connection: close`, so
// each SDK call opened a new TCP connection: a cost the app never pays in Azure, which inflated every
// local CPU figure (bench/README.md). Usage: node tools/emulators/cosmos.js --host 127.0.0.1 --port 8081
"use strict";
const { createHttpServer } = require("@vercel/cosmosdb-server");

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
};
const host = option("--host", "127.0.0.1");
const port = parseInt(option("--port", "8081"), 10);

const server = createHttpServer({ keepAlive: true });

// A write sent with `Prefer: return=minimal` is answered as Cosmos answers it: its status and headers,
// no document (a transactional batch: each operation's status, without its document). The package
// always sends the document back, which every local figure of the app's CPU then paid for parsing.
const [handle] = server.listeners("request");
server.removeAllListeners("request");
server.on("request", (req, res) => {
  const minimal = (req.headers.prefer || "").toLowerCase() === "return=minimal" && req.method !== "GET" &&
    String(req.headers["x-ms-documentdb-isquery"]).toLowerCase() !== "true";
  if (minimal) {
    const end = res.end.bind(res);
    res.end = (body, ...rest) => {
      if (res.statusCode >= 300 || typeof body !== "string") return end(body, ...rest);
      const batch = String(req.headers["x-ms-cosmos-is-batch-request"]).toLowerCase() === "true";
      const operations = batch ? JSON.parse(body).map(({ resourceBody, ...result }) => result) : null;
      return end(batch ? JSON.stringify(operations) : "", ...rest);
    };
  }
  handle(req, res);
});
// Longer than the clients' idle timeout (aiohttp's 15 s), so a client never sends on a connection the
// server is closing at that moment: the client closes idle connections first.
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.listen(port, host, () => {
  console.log(`Cosmos DB emulator listening on http://${host}:${port} (keep-alive)`);
});
