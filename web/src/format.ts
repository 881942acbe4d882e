// Showing numbers and times: credits are integers (int64 arrive as strings).

const grouping = new Intl.NumberFormat("en-US");

/** "1,250 credits", "1 credit", "−5 credits" for an integer given as a string or number. */
export function formatCredits(value: string | number | bigint | undefined | null): string {
  const amount = toBigInt(value);
  const abs = amount < 0n ? -amount : amount;
  const text = grouping.format(abs);
  const sign = amount < 0n ? "−" : "";
  return `${sign}${text} ${abs === 1n ? "credit" : "credits"}`;
}

/** A ledger amount with its sign: "+100", "−5", "0". */
export function formatDelta(value: string | number | undefined | null): string {
  const amount = toBigInt(value);
  if (amount === 0n) return "0";
  const abs = amount < 0n ? -amount : amount;
  return `${amount < 0n ? "−" : "+"}${grouping.format(abs)}`;
}

export function toBigInt(value: string | number | bigint | undefined | null): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return Number.isFinite(value) ? BigInt(Math.trunc(value)) : 0n;
  if (typeof value === "string" && /^-?\d+$/.test(value.trim())) return BigInt(value.trim());
  return 0n;
}

/** "2 Dec 2026, 14:05" in the reader's time zone; "" when missing or invalid. */
export function formatTime(iso: string | undefined | null, timeZone?: string): string {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone,
  }).format(date);
}

/** A job or post status in words: "SUCCEEDED" → "Succeeded". */
export function formatStatus(status: string | undefined): string {
  if (!status) return "";
  const words = status.replace(/^JOB_STATUS_/, "").replace(/_/g, " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A price in the currency's smallest unit (cents) in words: "$5.00", "¥500". */
export function formatMoney(minor: string | number | undefined | null, currency = "usd"): string {
  const code = (currency || "usd").toUpperCase();
  let format: Intl.NumberFormat;
  try {
    format = new Intl.NumberFormat("en-US", { style: "currency", currency: code });
  } catch {
    return `${toBigInt(minor).toString()} ${code}`; // not an ISO 4217 code
  }
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  const amount = toBigInt(minor);
  return format.format(Number(amount) / 10 ** digits);
}
