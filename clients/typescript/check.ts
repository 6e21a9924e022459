// Calls a meeting backend, a meeting server and a moderator make, written against the types
// openapi-typescript generates from openapi/openapi.json. scripts/spec-check generates
// `./vouch.d.ts` next to a copy of this file and runs `tsc --noEmit --strict`: when the spec
// stops describing these calls (a renamed path, field or status), this file stops compiling.
// Never run; only type-checked.

import createClient from "openapi-fetch";
import type { components, paths } from "./vouch";

type Account = components["schemas"]["AccountResponse"];
type Problem = components["schemas"]["Problem"];

function vouch(key: string) {
  return createClient<paths>({
    baseUrl: "http://127.0.0.1:8080",
    headers: { Authorization: `Bearer ${key}` },
  });
}

function explain(problem: Problem): string {
  // `code` is the stable reason; `detail` is for people.
  return `${problem.status} ${problem.code}: ${problem.detail}`;
}

/** A backend: create the account, then ask for an E2EE token. */
export async function issueFor(backendKey: string, externalId: string): Promise<string> {
  const api = vouch(backendKey);
  const created = await api.POST("/v1/accounts", {
    body: { external_id: externalId, email: "ann@example.org", display_name: "Ann" },
  });
  if (created.error) throw new Error(explain(created.error));
  const account: Account = created.data;
  const verified: boolean = account.email_verified && account.status === "active";

  const issued = await api.POST("/v1/accounts/{id}/tokens", {
    params: { path: { id: account.id } },
    body: { ttl_seconds: verified ? 600 : 300 },
  });
  if (issued.error) throw new Error(explain(issued.error));
  const expires: string = issued.data.expires_at;
  return `${issued.data.token_type} ${issued.data.kid} ${expires} ${issued.data.token}`;
}

/** A meeting server: may this participant receive E2EE keys? */
export async function admit(meetingKey: string, token: string, deviceJkt?: string): Promise<boolean> {
  const { data, error } = await vouch(meetingKey).POST("/v1/e2ee/authorize", {
    body: { token, device_jkt: deviceJkt ?? null, meeting_id: "standup" },
  });
  if (error) throw new Error(explain(error));
  if (!data.allow) {
    const actions: string[] = data.required_actions ?? [];
    console.log(`refused (${data.reason}); the person can: ${actions.join(", ")}`);
  }
  return data.allow;
}

/** A moderator: suspend an account found by its platform id, and revoke a reported token. */
export async function suspend(moderatorKey: string, externalId: string, token: string): Promise<void> {
  const api = vouch(moderatorKey);
  const found = await api.GET("/v1/accounts", {
    params: { query: { external_id: externalId, limit: 1 } },
  });
  if (found.error) throw new Error(explain(found.error));
  for (const account of found.data.items) {
    const patched = await api.PATCH("/v1/accounts/{id}", {
      params: { path: { id: account.id } },
      body: { status: "suspended" },
    });
    if (patched.error) throw new Error(explain(patched.error));
  }
  const revoked = await api.POST("/v1/tokens/revoke", { body: { token } });
  if (revoked.error) throw new Error(explain(revoked.error));
}

/** The generated types are strict: these must not compile. */
export async function mistakes(key: string): Promise<void> {
  const api = vouch(key);
  // @ts-expect-error: `external_id` is required
  await api.POST("/v1/accounts", { body: { email: "ann@example.org" } });
  // @ts-expect-error: the status is `active` or `suspended`
  await api.PATCH("/v1/accounts/{id}", { params: { path: { id: "acc_1" } }, body: { status: "banned" } });
  // @ts-expect-error: no such path
  await api.GET("/v1/account");
}
