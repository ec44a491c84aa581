// Models from GET /v1/catalog, the cost bound from POST /v1/jobs:quote, submit with POST /v1/jobs,
// tokens from GET /v1/jobs/{id}/stream (SSE over fetch), cancel with POST /v1/jobs/{id}/cancel.
import { api, apiKey, credits, el, errorBox, header, show, sse, when } from "./common.js";

const models = document.getElementById("models");
const formSlot = document.getElementById("job-form-slot");
const jobSlot = document.getElementById("job-slot");
const FINAL = new Set(["completed", "failed", "canceled"]);

async function loadModels() {
  show(formSlot);
  if (!apiKey()) {
    show(models, el("p", {}, "Sign in with your API key (at the top) to see the models and submit jobs."));
    return;
  }
  try {
    const catalog = await api("/v1/catalog");
    show(models, el("ul", { class: "cards" }, catalog.data.map(card)));
  } catch (error) {
    show(models, errorBox(error));
  }
}

function card(model) {
  const available = model.miners > 0;
  return el(
    "li",
    { class: available ? "card" : "card unavailable", "data-model": model.id },
    el("h3", {}, model.id),
    el("p", {}, model.description || ""),
    el(
      "p",
      { class: "muted" },
      `${credits(model.price_input_per_1k)} in / ${credits(model.price_output_per_1k)} out per 1k tokens · tier ${model.min_tier} · context ${model.context_length || "?"}`,
    ),
    el(
      "p",
      { class: available ? "ok" : "muted" },
      available ? `${model.miners} miner(s), ${model.free_slots} free slot(s)` : "Unavailable: no miner serves it now",
    ),
    el("button", { type: "button", onclick: () => openForm(model), disabled: !available }, available ? `Choose ${model.id}` : "Unavailable"),
  );
}

function number(name, label, value, min, max, step) {
  return el("label", {}, label, el("input", { name, type: "number", value, min, max, step, required: true }));
}

function openForm(model) {
  const estimate = el("p", { id: "estimate", "aria-live": "polite" });
  const form = el(
    "form",
    { id: "job-form", "aria-label": `Submit a job to ${model.id}` },
    el("h2", { class: "wide" }, `New job on ${model.id}`),
    el("label", { class: "wide" }, "Prompt", el("textarea", { name: "prompt", required: true, maxlength: 200000 })),
    number("max_tokens", "Max tokens (1–8192)", 256, 1, 8192, 1),
    number("temperature", "Temperature (0–2)", 0.7, 0, 2, 0.05),
    number("top_p", "Top-p (0–1)", 0.9, 0.01, 1, 0.01),
    el("button", { type: "submit", id: "submit-job" }, "Submit Job"),
    estimate,
  );
  let timer;
  let asked = 0;
  const quote = async () => {
    const data = new FormData(form);
    const prompt = String(data.get("prompt") || "");
    if (!prompt) {
      estimate.textContent = "Write a prompt to see the estimated maximum cost.";
      return;
    }
    const ask = ++asked;
    try {
      const answer = await api("/v1/jobs:quote", {
        method: "POST",
        body: { model: model.id, prompt, max_tokens: Number(data.get("max_tokens")) },
      });
      if (ask !== asked) return;
      estimate.className = "";
      estimate.textContent = `Estimated maximum cost: ${credits(answer.estimated_cost)} (${answer.prompt_tokens} prompt tokens + up to ${answer.max_tokens} generated); you are charged for what runs.`;
    } catch (error) {
      if (ask !== asked) return;
      estimate.className = "error";
      estimate.textContent = error.message;
    }
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(quote, 250);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    submit({
      model: model.id,
      prompt: String(data.get("prompt")),
      params: {
        max_tokens: Number(data.get("max_tokens")),
        temperature: Number(data.get("temperature")),
        top_p: Number(data.get("top_p")),
        stream: true,
      },
    });
  });
  quote();
  show(formSlot, form);
  show(jobSlot);
  form.querySelector("textarea").focus();
}

async function submit(request) {
  const status = el("p", { id: "job-status" }, "Submitting…");
  show(jobSlot, status);
  let job;
  try {
    job = await api("/v1/jobs", { method: "POST", body: request });
  } catch (error) {
    show(jobSlot, errorBox(error));
    return;
  }
  const output = el("div", { id: "output", class: "output", "aria-label": "Output" });
  const cancel = el("button", { type: "button", id: "cancel-job" }, "Cancel");
  const summary = el("div", { id: "job-summary" });
  const tokens = { count: 0 };
  const describe = (state) => {
    let text = `Job ${job.job_id}: ${state}`;
    const routing = job.routing || {};
    if (state === "pending") {
      text += ` · queue position ${routing.queue_position ?? 0}`;
      if (routing.estimated_start) text += ` · expected to start ${when(routing.estimated_start)}`;
    } else if (!FINAL.has(state)) text += ` · ${tokens.count} token(s)`;
    status.textContent = text;
    status.dataset.state = state;
  };
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api(`/v1/jobs/${encodeURIComponent(job.job_id)}/cancel`, { method: "POST" });
    } catch (error) {
      summary.replaceChildren(errorBox(error));
      cancel.disabled = false;
    }
  });
  show(jobSlot, status, cancel, output, summary);
  describe(job.status);
  let last = job.status;
  // While pending, the queue position and expected start come from the job itself (the stream has no such event).
  const poll = setInterval(async () => {
    if (last !== "pending") return;
    try {
      job = await api(`/v1/jobs/${encodeURIComponent(job.job_id)}`);
      if (last === "pending") describe(last);
    } catch {
      // The next tick asks again; the stream still reports the state.
    }
  }, 2000);
  try {
    await sse(`/v1/jobs/${encodeURIComponent(job.job_id)}/stream`, (event) => {
      if (event.tokens) {
        output.append(document.createTextNode(event.tokens.text));
        tokens.count += event.tokens.token_count || 0;
        describe(last);
      } else if (event.state_change) {
        last = event.state_change.status;
        describe(last);
      }
    });
  } catch (error) {
    summary.replaceChildren(errorBox(error));
  }
  clearInterval(poll);
  cancel.hidden = true;
  await finish(job.job_id, status, summary);
  header(loadModels); // the balance in the header, after the charge
}

async function finish(jobId, status, summary) {
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
    status.textContent = `Job ${job.job_id}: ${job.status}${job.error ? ` (${job.error})` : ""}`;
    status.dataset.state = job.status;
    const usage = job.usage || {};
    const facts = [
      el("dt", {}, "Tokens"),
      el("dd", { id: "job-tokens" }, `${usage.prompt_tokens || 0} prompt + ${usage.completion_tokens || 0} generated`),
    ];
    if (job.receipt_id) {
      let charged = "see the receipt";
      try {
        charged = credits((await api(`/v1/receipts/${encodeURIComponent(job.receipt_id)}`, { auth: false })).receipt.charged);
      } catch {
        // The receipt is written with the charge; a missing one only loses the amount here.
      }
      facts.push(
        el("dt", {}, "Charged"),
        el("dd", { id: "job-charge" }, charged),
        el("dt", {}, "Receipt"),
        el("dd", {}, el("a", { id: "receipt-link", href: `/explorer/#/receipts/${encodeURIComponent(job.receipt_id)}` }, job.receipt_id)),
      );
    }
    facts.push(el("dt", {}, "Job"), el("dd", {}, el("a", { href: `/dashboard/#/jobs/${encodeURIComponent(job.job_id)}` }, "Open in the dashboard")));
    summary.append(el("dl", {}, facts));
  } catch (error) {
    summary.append(errorBox(error));
  }
}

header(loadModels);
loadModels();
