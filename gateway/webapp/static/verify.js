// Receipt verification in the browser (docs/settlement.md, "What is signed, and how"): Ed25519 signatures over
// RFC 8785 canonical JSON, and the RFC 6962/9162 Merkle inclusion proof of the receipt in its signed block.
// Only strings, integers, booleans and null occur, so sorted keys with JSON.stringify are the canonical bytes.

export function canonical(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
}

const utf8 = (text) => new TextEncoder().encode(text);

function b64url(text) {
  const base = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base + "=".repeat((4 - (base.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

const hex = (bytes) => Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
const unhex = (text) => Uint8Array.from(text.match(/../g) || [], (pair) => parseInt(pair, 16));

async function sha(...parts) {
  const size = parts.reduce((sum, part) => sum + part.length, 0);
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

async function ed25519(publicKey, signature, message) {
  const key = await crypto.subtle.importKey("raw", b64url(publicKey), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, b64url(signature), utf8(message));
}

export async function ed25519Supported() {
  try {
    await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
    return true;
  } catch {
    return false;
  }
}

async function included(receipt, proof, root) {
  let fn = proof.leaf_index;
  let sn = proof.tree_size - 1;
  let node = await sha(new Uint8Array([0]), utf8(canonical(receipt)));
  for (const sibling of (proof.path || []).map(unhex)) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      node = await sha(new Uint8Array([1]), sibling, node);
      while (!(fn & 1) && fn !== 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else node = await sha(new Uint8Array([1]), node, sibling);
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 && hex(node) === root;
}

// The REST JSON leaves unset optional fields out; the signed receipt has them as null.
function signedReceipt(receipt) {
  return { ...receipt, miner_public_key: receipt.miner_public_key ?? null, miner_signature: receipt.miner_signature ?? null };
}

// The REST header adds block_hash and leaves out `type`; the signed header is these fields only.
const HEADER = ["height", "previous_hash", "time", "tx_root", "tx_count", "receipts_root", "receipt_count"];
function signedHeader(block) {
  const header = { type: "aitbc.block_header.v1" };
  for (const key of HEADER) header[key] = block[key];
  return header;
}

// {verified, supported, summary, checks: [[name, "passed" | "failed" | "skipped" | "not checked"]]}.
export async function verifyReceipt(restReceipt, coordinatorKey, proof) {
  const receipt = signedReceipt(restReceipt);
  const checks = [];
  const supported = typeof crypto !== "undefined" && crypto.subtle && (await ed25519Supported());
  const check = async (name, run) => {
    try {
      checks.push([name, (await run()) ? "passed" : "failed"]);
    } catch {
      checks.push([name, "failed"]);
    }
  };
  if (supported) {
    const { coordinator_signature: signature, ...body } = receipt;
    await check("coordinator_signature", () => ed25519(coordinatorKey, signature, canonical(body)));
    if (receipt.miner_signed && receipt.miner_public_key && receipt.miner_signature) {
      const attestation = { type: "aitbc.miner_attestation.v1" };
      for (const key of ["job_id", "attempt", "output_hash", "prompt_tokens", "completion_tokens"]) attestation[key] = receipt[key];
      await check("miner_signature", () => ed25519(receipt.miner_public_key, receipt.miner_signature, canonical(attestation)));
    } else checks.push(["miner_signature", "skipped"]);
    if (proof) {
      await check("block_signature", () => ed25519(coordinatorKey, proof.block.coordinator_signature, canonical(signedHeader(proof.block))));
    }
  } else {
    checks.push(["signatures", "not checked (this browser's WebCrypto has no Ed25519)"]);
  }
  if (proof) {
    await check("block_hash", async () => hex(await sha(utf8(canonical(signedHeader(proof.block))))) === proof.block.block_hash);
    await check("merkle_inclusion", async () => proof.proof.tree_size === proof.block.receipt_count && included(receipt, proof.proof, proof.block.receipts_root));
  } else checks.push(["merkle_inclusion", "not checked (not sealed in a block yet)"]);
  checks.push(["output_hash", "not checked here (the explorer never sees the output; the dashboard's Verify does)"]);
  const failed = checks.some(([, outcome]) => outcome === "failed");
  const verified = supported && !failed && Boolean(proof);
  let summary;
  if (failed) summary = "Verification FAILED: see the checks below.";
  else if (!supported) summary = "Not verified: this browser cannot check Ed25519 signatures; the server's proof is shown below (run aitbc verify).";
  else if (!proof) summary = "Signatures verified in this browser; not sealed in a block yet.";
  else summary = "Verified in this browser: signatures and Merkle inclusion in a signed block.";
  return { verified, supported, summary, checks };
}
