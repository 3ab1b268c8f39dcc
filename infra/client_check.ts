// Type-checked with `tsc --strict` against the types openapi-typescript generated from
// the API's OpenAPI document (labelport-api.ts, beside this file when it runs): the
// requests a TypeScript client sends must fit them as the README describes them.
import type { components, operations } from "./labelport-api";

type ExportRequest = components["schemas"]["ExportRequest"];
type CreateExport = operations["createExport"];

// `delivery` may be left out: FILE_STORAGE is its default.
export const plain: ExportRequest = { format: "CSV" };
export const emailed: ExportRequest = {
  format: "NDJSON",
  delivery: { method: "EMAIL", recipients: ["manager@example.com"] },
};
export const body: CreateExport["requestBody"] = { content: { "application/json": plain } };
export const followed = (accepted: CreateExport["responses"][202]["content"]["application/json"]): string =>
  accepted.statusUrl;
