/** What a mock upstream does right now. */
export type BackendMode =
  | { kind: "healthy" }
  | { kind: "status"; status: number }
  | { kind: "slow"; delayMs: number }
  | { kind: "down" };

export interface BackendSpec {
  name: string;
  /** Host names that resolve to this backend (each gets the backend's 127.0.0.x address). */
  hosts: string[];
  mode: BackendMode;
}

/** The OpenAI-style answer every mock backend gives to a chat completion. */
export function chatCompletionBody(backend: string, requestBody: string): string {
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
