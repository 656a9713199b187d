// Lists the operations of /api/v1/openapi.json.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const spec = await (await fetch("/api/v1/openapi.json")).json();
  const body = document.querySelector("#operations tbody");
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const row = document.createElement("tr");
      for (const text of [method.toUpperCase(), path, operation.summary || "", Object.keys(operation.responses || {}).join(", ")]) {
        const td = document.createElement("td");
        td.textContent = text;
        row.append(td);
      }
      body.append(row);
    }
  }
});
