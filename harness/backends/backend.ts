/** What a mock upstream does right now. */
export type BackendMode =
  | { kind: "healthy" }
  | { kind: "status"; status: number }
  | { kind: "slow"; delayMs: number }
  | { kind: "down" };

/** The longest `slow` delay a backend takes (as long as a scenario's longest duration). */
const MAX_DELAY_MS = 3_600_000;

/** A BackendMode from untrusted JSON (serve's control API), or why it is not one. */
export function checkBackendMode(v: unknown): BackendMode | string {
  const expected = 'expected {"kind": "healthy"}, {"kind": "down"}, {"kind": "status", "status": 100..599} or {"kind": "slow", "delayMs": 0..3600000}';
  if (typeof v !== "object" || v === null || Array.isArray(v)) return expected;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(",");
  if ((o.kind === "healthy" || o.kind === "down") && keys === "kind") return { kind: o.kind };
  if (o.kind === "status" && keys === "kind,status" && Number.isInteger(o.status) && (o.status as number) >= 100 && (o.status as number) <= 599) return { kind: "status", status: o.status as number };
  if (o.kind === "slow" && keys === "delayMs,kind" && Number.isInteger(o.delayMs) && (o.delayMs as number) >= 0 && (o.delayMs as number) <= MAX_DELAY_MS) return { kind: "slow", delayMs: o.delayMs as number };
  return `${expected}, got ${JSON.stringify(v).slice(0, 200)}`;
}

export interface BackendSpec {
  name: string;
  /** Host names that resolve to this backend (each gets the backend's 127.0.0.x address). */
  hosts: string[];
  mode: BackendMode;
}

/** Answers by backend and request body: the same for the same two, and a run sends one body again and again. */
const answers = new Map<string, Map<string, string>>();

/** The OpenAI-style answer every mock backend gives to a chat completion. */
export function chatCompletionBody(backend: string, requestBody: string): string {
  let mine = answers.get(backend);
  if (!mine) {
    if (answers.size >= 64) answers.clear();
    answers.set(backend, (mine = new Map()));
  }
  let body = mine.get(requestBody);
  if (body === undefined) {
    if (mine.size >= 256) mine.clear();
    mine.set(requestBody, (body = answerFor(backend, requestBody)));
  }
  return body;
}

function answerFor(backend: string, requestBody: string): string {
  let model = "unknown";
  try {
    const parsed = JSON.parse(requestBody) as { model?: unknown };
    if (typeof parsed.model === "string") model = parsed.model;
  } catch {
    // A non-JSON body still gets an answer; the gateway decides what is valid.
  }
  return JSON.stringify({
    id: `chatcmpl-${backend}`,
    object: "chat.completion",
    model,
    choices: [{ index: 0, message: { role: "assistant", content: `hello from ${backend}` }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
  });
}

export function isChatPath(path: string): boolean {
  return /\/chat\/completions(\?|$)/.test(path) || /:(generateContent|predict)/.test(path);
}
