// The public explorer: GET /explorer/stats, /explorer/blocks, /explorer/blocks/{height}, /explorer/transactions,
// /explorer/receipts and /v1/receipts/{id}, all without a key; GET /v1/miners only when signed in (it needs a key).
// Views are hash routes (#/blocks/5, #/receipts/ID) so that /explorer/blocks stays the JSON API's.
// Receipts hold addresses, hashes and amounts only: no prompt or output is ever shown here.
import { api, apiKey, credits, el, errorBox, header, short, show, when } from "./common.js";
import { verifyReceipt } from "./verify.js";

const root = document.getElementById("explorer");

async function route() {
  const [, view, id] = (location.hash.replace(/^#\/?/, "") || "").match(/^([a-z]*)\/?(.*)$/) || [];
  show(root, el("p", { class: "muted" }, "Loading…"));
  try {
    if (view === "blocks" && id !== "") await blockView(Number(id));
    else if (view === "receipts" && id) await receiptView(decodeURIComponent(id));
    else await overview();
  } catch (error) {
    show(root, el("p", {}, el("a", { href: "#/" }, "← Explorer")), errorBox(error));
  }
}

function table(caption, heads, rows, id) {
  return el(
    "div",
    { class: "scroll" },
    el("table", { id }, el("caption", {}, caption), el("thead", {}, el("tr", {}, heads.map((head) => el("th", { scope: "col" }, head)))), el("tbody", {}, rows)),
  );
}

async function overview() {
  const pub = { auth: false };
  const [stats, blocks, transactions, receipts] = await Promise.all([
    api("/explorer/stats", pub),
    api("/explorer/blocks?limit=10", pub),
    api("/explorer/transactions?limit=10", pub),
    api("/explorer/receipts?limit=10", pub),
  ]);
  const facts = [
    ["Height", stats.height],
    ["Transactions", stats.transactions],
    ["Receipts", stats.receipts],
    ["Jobs submitted / completed", `${stats.jobs_submitted} / ${stats.jobs_completed}`],
    ["Tokens served", stats.tokens_served],
    ["Miners online", stats.miners_online],
    ["Models served", (stats.models_served || []).join(", ") || "none"],
    ["Charged / fees", `${credits(stats.charged)} / ${credits(stats.fees)}`],
    ["Minted / held", `${credits(stats.minted)} / ${credits(stats.held)}`],
    ["Last hour", `${stats.last_hour?.jobs_completed ?? 0} jobs, ${(stats.last_hour?.tokens_per_second ?? 0).toFixed(2)} tokens/s`],
  ];
  const miners = el("section", { id: "miners" });
  show(
    root,
    el("section", { id: "stats" }, el("h2", {}, "Network"), el("dl", {}, facts.map(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]))),
    el("h2", {}, "Recent blocks"),
    table(
      "Newest first",
      ["Height", "Time", "Transactions", "Receipts", "Hash"],
      blocks.blocks.map((block) =>
        el("tr", {}, el("td", {}, el("a", { href: `#/blocks/${block.height}` }, String(block.height))), el("td", {}, when(block.time)), el("td", {}, String(block.tx_count)), el("td", {}, String(block.receipt_count)), el("td", {}, el("code", {}, short(block.block_hash)))),
      ),
      "blocks",
    ),
    el("h2", {}, "Recent transactions"),
    transactionsTable(transactions.transactions),
    el("h2", {}, "Recent receipts"),
    receiptsTable(receipts.receipts),
    miners,
  );
  if (!apiKey()) {
    show(miners, el("h2", {}, "Miners"), el("p", { class: "muted" }, "The miners list needs an API key (GET /v1/miners): sign in to see it."));
    return;
  }
  try {
    const list = (await api("/v1/miners")).miners;
    show(
      miners,
      el("h2", {}, "Miners"),
      table(
        "Connected first",
        ["Miner", "State", "Reputation", "Tier", "Models", "Free slots"],
        list.map((miner) =>
          el("tr", {}, el("td", {}, miner.miner_id), el("td", {}, miner.online ? (miner.draining ? "draining" : "online") : "offline"), el("td", {}, `${((miner.reputation?.score ?? 0) / 100).toFixed(1)}%`), el("td", {}, String(miner.tier)), el("td", {}, (miner.models || []).join(", ")), el("td", {}, `${miner.free_slots}/${miner.max_concurrency}`)),
        ),
        "miners-table",
      ),
    );
  } catch (error) {
    show(miners, el("h2", {}, "Miners"), errorBox(error));
  }
}

function transactionsTable(transactions) {
  return table(
    "Ledger transactions, newest first",
    ["Kind", "Job", "Postings", "Hash"],
    transactions.map((tx) =>
      el("tr", {}, el("td", {}, tx.kind), el("td", {}, tx.job_id || ""), el("td", {}, tx.postings.map((posting) => el("div", {}, `${short(posting.account, 14)} ${posting.bucket} ${posting.amount > 0 ? "+" : ""}${credits(posting.amount)}`))), el("td", {}, el("code", {}, short(tx.tx_hash)))),
    ),
    "transactions",
  );
}

function receiptsTable(receipts) {
  return table(
    "Signed receipts",
    ["Receipt", "Outcome", "Model", "Tokens", "Charged"],
    receipts.map((receipt) =>
      el("tr", {}, el("td", {}, el("a", { href: `#/receipts/${encodeURIComponent(receipt.receipt_id)}` }, receipt.receipt_id)), el("td", {}, receipt.outcome), el("td", {}, receipt.model), el("td", {}, `${receipt.prompt_tokens} + ${receipt.completion_tokens}`), el("td", {}, credits(receipt.charged))),
    ),
    "receipts",
  );
}

async function blockView(height) {
  const block = await api(`/explorer/blocks/${height}`, { auth: false });
  const header = block.header;
  show(
    root,
    el("p", {}, el("a", { href: "#/" }, "← Explorer")),
    el("h2", { id: "block-title" }, `Block ${header.height}`),
    el(
      "dl",
      { id: "block" },
      [
        ["Time", when(header.time)],
        ["Block hash", header.block_hash],
        ["Previous hash", header.previous_hash],
        ["Transactions root (Merkle)", header.tx_root],
        ["Receipts root (Merkle)", header.receipts_root],
        ["Transactions / receipts", `${header.tx_count} / ${header.receipt_count}`],
        ["Coordinator signature", header.coordinator_signature],
      ].map(([name, value]) => [el("dt", {}, name), el("dd", {}, el("code", {}, String(value)))]),
    ),
    el("h3", {}, "Transactions"),
    transactionsTable(block.transactions),
    el("h3", {}, "Receipts"),
    receiptsTable(block.receipts),
  );
}

async function receiptView(receiptId) {
  const answer = await api(`/v1/receipts/${encodeURIComponent(receiptId)}`, { auth: false });
  const receipt = answer.receipt;
  const checks = el("ul", { id: "checks" }, el("li", {}, "Verifying in the browser…"));
  const status = el("p", { id: "verification", "aria-live": "polite" }, "Verifying…");
  show(
    root,
    el("p", {}, el("a", { href: "#/" }, "← Explorer")),
    el("h2", {}, `Receipt ${receipt.receipt_id}`),
    status,
    checks,
    el("dl", { id: "receipt" }, Object.entries(receipt).map(([name, value]) => [el("dt", {}, name), el("dd", {}, el("code", {}, value === null || value === undefined ? "null" : String(value)))])),
    answer.proof
      ? el("p", {}, "Sealed in ", el("a", { href: `#/blocks/${answer.proof.block.height}` }, `block ${answer.proof.block.height}`), ` (leaf ${answer.proof.proof.leaf_index} of ${answer.proof.proof.tree_size}).`)
      : el("p", { class: "muted" }, "Not sealed in a block yet: that happens within a block interval of the job's end."),
    el("p", { class: "muted" }, `Coordinator public key: ${answer.coordinator_public_key}. For a check that does not trust this page, pin the key and run aitbc verify.`),
  );
  const result = await verifyReceipt(receipt, answer.coordinator_public_key, answer.proof);
  show(checks, result.checks.map(([name, outcome]) => el("li", { class: outcome === "passed" ? "ok" : outcome === "failed" ? "error" : "muted" }, `${name}: ${outcome}`)));
  status.textContent = result.summary;
  status.className = result.verified ? "ok" : result.supported ? "error" : "muted";
  status.dataset.verified = String(result.verified);
}

header(route);
window.addEventListener("hashchange", route);
route();
