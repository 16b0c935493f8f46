/**
 * Request paths of the served API v1. A run key is three path segments, each
 * percent-encoded so that only RFC 3986 unreserved characters stay as they
 * are (a `/` inside a goal is `%2F`), and `goal/episode/agent` in a query.
 */

import type { RunKey } from "./types.js";

/** Percent-encodes everything but RFC 3986 unreserved characters. */
export function encodeSegment(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `/v1/runs/{goal}/{episode}/{agent}` followed by `suffix`. */
export function runPath(key: RunKey, suffix = ""): string {
  return `/v1/runs/${encodeSegment(key.goal)}/${key.episode}/${encodeSegment(key.agent)}${suffix}`;
}

/** A key as one query value: `goal/episode/agent`, each part encoded (so a `/` inside one is `%2F`). */
export function keyQuery(key: RunKey): string {
  return `${encodeSegment(key.goal)}/${key.episode}/${encodeSegment(key.agent)}`;
}

/** `?name=value&…` of the defined entries (values encoded), or `""` when none is. */
export function query(entries: Record<string, string | number | RunKey | undefined>): string {
  const parts = Object.entries(entries)
    .filter((entry): entry is [string, string | number | RunKey] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${queryValue(value)}`);
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

function queryValue(value: string | number | RunKey): string {
  if (typeof value === "number") {
    return String(value);
  }
  return typeof value === "string" ? encodeSegment(value) : keyQuery(value);
}
