// Parses and analyses KQL with Microsoft's Kusto.Language (npm @kusto/language-service-next) against the
// Application Insights tables' schemas. stdin: {"where": "query", ...}; stdout: {"where": ["error", ...], ...}.
require("@kusto/language-service-next/bridge.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.js");

const K = Kusto.Language;
// Columns every Application Insights table has (the subset the queries may use), then each table's own.
const COMMON = "timestamp:datetime, itemType:string, itemCount:int, customDimensions:dynamic, customMeasurements:dynamic, "
  + "operation_Name:string, operation_Id:string, operation_ParentId:string, cloud_RoleName:string, "
  + "cloud_RoleInstance:string, appName:string, sdkVersion:string";
const SCHEMAS = {
  requests: "id:string, name:string, url:string, source:string, success:bool, resultCode:string, duration:real, performanceBucket:string",
  dependencies: "id:string, target:string, type:string, name:string, data:string, success:bool, resultCode:string, duration:real, performanceBucket:string",
  traces: "message:string, severityLevel:int",
  exceptions: "problemId:string, type:string, message:string, outerMessage:string, severityLevel:int, details:dynamic",
  customMetrics: "name:string, value:real, valueCount:int, valueSum:real, valueMin:real, valueMax:real, valueStdDev:real",
  performanceCounters: "name:string, category:string, counter:string, instance:string, value:real",
};

const tables = Object.entries(SCHEMAS).map(([name, own]) => new K.Symbols.TableSymbol.$ctor7(name, `(${own}, ${COMMON})`, null));
const globals = K.GlobalState.Default.WithDatabase(new K.Symbols.DatabaseSymbol.$ctor1("appinsights", Bridge.toList(tables), false));

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const result = {};
  for (const [where, query] of Object.entries(JSON.parse(input))) {
    const diagnostics = Bridge.toArray(K.KustoCode.ParseAndAnalyze(query, globals).GetDiagnostics());
    result[where] = diagnostics.filter((d) => d.Severity === "Error")
      .map((d) => `${d.Message} at ${JSON.stringify(query.substr(d.Start, 30))}`);
  }
  process.stdout.write(JSON.stringify(result));
});
