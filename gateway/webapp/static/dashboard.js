// The account's view: GET /v1/account, /v1/jobs/stats, /v1/jobs (filters, pages), live from GET /v1/jobs:watch;
// a job's page (#/jobs/ID): GET /v1/jobs/{id}, its events from /v1/jobs/{id}/stream, download, share, delete, verify.
import { api, apiKey, credits, el, errorBox, header, show, sse, when } from "./common.js";
import { verifyReceipt } from "./verify.js";

const root = document.getElementById("dashboard");
const STATES = ["", "pending", "assigned", "running", "completed", "failed", "canceled"];
let watching = null;
const filters = { status: "", days: "", pages: [""] };

function route() {
  if (!apiKey()) {
    stopWatching();
    show(root, el("p", {}, "Sign in with your API key (at the top) to see your jobs, balance and statistics."));
    return;
  }
  const match = location.hash.match(/^#\/jobs\/(.+)$/);
  if (match) {
    stopWatching();
    jobView(decodeURIComponent(match[1])).catch((error) => show(root, back(), errorBox(error)));
  } else overview();
}

const back = () => el("p", {}, el("a", { href: "#/" }, "← All jobs"));

function stopWatching() {
  if (watching) watching.abort();
  watching = null;
}

function overview() {
  const account = el("section", { id: "balance" });
  const stats = el("section", { id: "stats" });
  const list = el("section", { id: "jobs" });
  const status = el("select", { name: "status", "aria-label": "Status" }, STATES.map((state) => el("option", { value: state, selected: state === filters.status }, state || "any status")));
  const days = el("select", { name: "days", "aria-label": "Created" }, [["", "any time"], ["1", "last day"], ["7", "last 7 days"], ["30", "last 30 days"]].map(([value, text]) => el("option", { value, selected: value === filters.days }, text)));
  const form = el("form", { id: "filters", "aria-label": "Filters" }, el("label", {}, "Status", status), el("label", {}, "Created", days));
  form.addEventListener("change", () => {
    filters.status = status.value;
    filters.days = days.value;
    filters.pages = [""];
    loadJobs(list);
  });
  show(root, account, stats, el("h2", {}, "Jobs"), form, list);
  loadAccount(account, stats);
  loadJobs(list);
  if (!watching) watch(() => {
    loadJobs(list);
    loadAccount(account, stats);
  });
}

async function loadAccount(account, statsSlot) {
  try {
    const [data, stats] = await Promise.all([api("/v1/account"), api("/v1/jobs/stats")]);
    show(
      account,
      el("h2", {}, "Balance"),
      el("dl", {}, [
        [el("dt", {}, "Balance"), el("dd", { id: "balance-total" }, credits(data.balance))],
        [el("dt", {}, "Available"), el("dd", {}, credits(data.available))],
        [el("dt", {}, "Held"), el("dd", {}, credits(data.held))],
        [el("dt", {}, "Spent"), el("dd", {}, credits(data.spent))],
        [el("dt", {}, "Address"), el("dd", {}, data.address)],
      ]),
    );
    const counts = stats.counts || {};
    show(
      statsSlot,
      el("h2", {}, "Statistics"),
      el("dl", {}, [
        [el("dt", {}, "Jobs"), el("dd", {}, `${stats.total_jobs} (${counts.completed || 0} completed, ${counts.failed || 0} failed, ${counts.canceled || 0} canceled)`)],
        [el("dt", {}, "Success rate"), el("dd", {}, `${Math.round((stats.success_rate || 0) * 100)}%`)],
        [el("dt", {}, "Completion time p50 / p95"), el("dd", {}, `${(stats.p50_completion_seconds || 0).toFixed(1)} s / ${(stats.p95_completion_seconds || 0).toFixed(1)} s`)],
        [el("dt", {}, "Tokens in / out"), el("dd", {}, `${stats.prompt_tokens} / ${stats.completion_tokens}`)],
        [el("dt", {}, "Spent"), el("dd", {}, credits(stats.total_spent))],
      ]),
    );
  } catch (error) {
    show(account, errorBox(error));
  }
}

let listing = 0;
async function loadJobs(list) {
  const query = new URLSearchParams({ limit: "20" });
  if (filters.status) query.set("status", filters.status);
  if (filters.days) query.set("days", filters.days);
  const token = filters.pages[filters.pages.length - 1];
  if (token) query.set("page_token", token);
  const ask = ++listing;
  let page;
  let charged = new Map();
  try {
    // What each job was charged is on its receipt (the account's newest 1000); a job shows its hold bound until then.
    const [jobs, receipts] = await Promise.all([api(`/v1/jobs?${query}`), api("/v1/receipts?limit=1000").catch(() => ({ receipts: [] }))]);
    page = jobs;
    charged = new Map(receipts.receipts.map((receipt) => [receipt.job_id, receipt.charged]));
  } catch (error) {
    show(list, errorBox(error));
    return;
  }
  if (ask !== listing) return;
  const rows = page.jobs.map((job) =>
    el(
      "tr",
      { "data-job": job.job_id },
      el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}` }, job.job_id)),
      el("td", { class: "state" }, job.status),
      el("td", {}, job.model),
      el("td", {}, `${job.usage?.prompt_tokens ?? 0} + ${job.usage?.completion_tokens ?? 0}`),
      el("td", { class: "cost" }, charged.has(job.job_id) ? credits(charged.get(job.job_id)) : job.routing?.estimated_cost !== undefined && !["completed", "failed", "canceled"].includes(job.status) ? `≤ ${credits(job.routing.estimated_cost)} (held)` : "—"),
      el("td", {}, when(job.created_at)),
      el("td", {}, when(job.completed_at)),
    ),
  );
  const previous = el("button", { type: "button", disabled: filters.pages.length === 1, onclick: () => { filters.pages.pop(); loadJobs(list); } }, "← Newer");
  const next = el("button", { type: "button", disabled: !page.next_page_token, onclick: () => { filters.pages.push(page.next_page_token); loadJobs(list); } }, "Older →");
  show(
    list,
    rows.length
      ? el("div", { class: "scroll" }, el("table", { id: "jobs-table" }, el("thead", {}, el("tr", {}, ["Job", "Status", "Model", "Tokens", "Cost", "Created", "Finished"].map((head) => el("th", { scope: "col" }, head)))), el("tbody", {}, rows)))
      : el("p", {}, "No jobs match."),
    el("p", {}, previous, " ", next, " ", el("span", { class: "muted" }, `page ${filters.pages.length}`)),
  );
}

// Follows the account's updates; each one reloads the list (at most every half second).
function watch(onUpdate) {
  const controller = new AbortController();
  watching = controller;
  let timer = null;
  sse("/v1/jobs:watch", (event) => {
    if (!event.job_id || timer) return;
    timer = setTimeout(() => {
      timer = null;
      onUpdate();
    }, 500);
  }, { signal: controller.signal }).catch(() => {
    // A dropped watch (or leaving the page) ends live updates; the list still reloads on demand.
  });
}

async function jobView(jobId) {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const job = await api(path);
  const events = el("ol", { id: "events" });
  const actions = el("div", { id: "actions" });
  const result = el("div", { id: "action-result", "aria-live": "polite" });
  const download = el("button", { type: "button", id: "download" }, "Download (zip)");
  const expires = el("select", { "aria-label": "Share link expiry" }, ["1h", "1d", "7d", "30d"].map((value) => el("option", { value, selected: value === "7d" }, value)));
  const share = el("button", { type: "button", id: "share" }, "Share");
  const remove = el("button", { type: "button", id: "delete" }, "Delete");
  const verify = el("button", { type: "button", id: "verify", disabled: !job.receipt_id }, "Verify");
  actions.append(download, " ", share, " ", expires, " ", verify, " ", remove);
  show(
    root,
    back(),
    el("h2", {}, `Job ${job.job_id}`),
    el("dl", { id: "job" }, [
      ["Status", job.status + (job.error ? ` (${job.error})` : "")],
      ["Model", job.model],
      ["Miner", job.miner_id || "none yet"],
      ["Tokens", `${job.usage?.prompt_tokens ?? 0} prompt + ${job.usage?.completion_tokens ?? 0} generated`],
      ["Created", when(job.created_at)],
      ["Finished", when(job.completed_at)],
      ["Result kept until", when(job.result_expires_at)],
    ].map(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))])),
    el("h3", {}, "Prompt"),
    el("div", { class: "output", id: "prompt" }, job.prompt),
    el("h3", {}, "Output"),
    el("div", { class: "output", id: "output" }, job.result),
    job.receipt_id ? el("p", {}, "Receipt: ", el("a", { href: `/explorer/#/receipts/${encodeURIComponent(job.receipt_id)}` }, job.receipt_id)) : null,
    actions,
    result,
    el("h3", {}, "Events"),
    events,
  );
  download.addEventListener("click", () => act(result, async () => {
    const response = await fetch(`${path}/download?format=zip`, { headers: { "X-Api-Key": apiKey() } });
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || `download failed (HTTP ${response.status})`);
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `${job.job_id}.zip`, id: "download-link" }, `${job.job_id}.zip`);
    link.click();
    return [el("span", {}, "Downloaded: "), link];
  }));
  share.addEventListener("click", () => act(result, async () => {
    const answer = await api(`${path}/share`, { method: "POST", body: { expires: expires.value } });
    const url = new URL(answer.path, location.origin).href;
    return [el("span", {}, `Share link (works until ${when(answer.link.expires_at)}; shown once): `), el("a", { href: url, id: "share-link" }, url)];
  }));
  remove.addEventListener("click", () => act(result, async () => {
    if (!window.confirm("Delete this job's result for good?")) return ["Not deleted."];
    await api(`${path}?force=true`, { method: "DELETE" });
    return [el("span", { id: "deleted" }, "Deleted. "), el("a", { href: "#/" }, "Back to all jobs")];
  }));
  verify.addEventListener("click", () => act(result, async () => {
    const answer = await api(`/v1/receipts/${encodeURIComponent(job.receipt_id)}`, { auth: false });
    const checked = await verifyReceipt(answer.receipt, answer.coordinator_public_key, answer.proof);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(job.result)));
    const outputHash = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
    const matches = outputHash === answer.receipt.output_hash;
    const checks = checked.checks.filter(([name]) => name !== "output_hash").concat([["output_hash (this output)", matches ? "passed" : "failed"]]);
    return [el("p", { id: "verify-summary", class: matches && !checks.some(([, outcome]) => outcome === "failed") ? "ok" : "error" }, matches ? checked.summary : "Verification FAILED: the output does not match the receipt's hash."), el("ul", {}, checks.map(([name, outcome]) => el("li", {}, `${name}: ${outcome}`)))];
  }));
  // The timeline: the job's state changes so far (the stream ends once the job is final).
  const controller = new AbortController();
  window.addEventListener("hashchange", () => controller.abort(), { once: true });
  sse(`${path}/stream?from_seq=1`, (event) => {
    if (!event.state_change) return;
    const change = event.state_change;
    const details = [change.miner_id && `miner ${change.miner_id}`, change.attempt && `attempt ${change.attempt}`, change.error, change.finish_reason && `finish: ${change.finish_reason}`].filter(Boolean).join(", ");
    events.append(el("li", {}, `${when(event.time)}: ${change.status}${details ? ` (${details})` : ""}`));
  }, { signal: controller.signal }).catch((error) => {
    if (error.name !== "AbortError") events.append(el("li", {}, errorBox(error)));
  });
}

async function act(slot, run) {
  try {
    show(slot, await run());
  } catch (error) {
    show(slot, errorBox(error));
  }
}

header(route);
window.addEventListener("hashchange", route);
route();
