// <loyalty-widget shop="…" token="…" lang="vi|en">: a customer's points, tier and rewards in a
// shop's storefront. Hand-written, no dependency, no build. The DOM is built with textContent
// only and styled through a constructable stylesheet, so a storefront's strict CSP (no
// 'unsafe-inline', no eval) allows it. Times are never compared here: the console does that.

const API = new URL("./", import.meta.url);

const WORDS = {
  vi: {
    points: "điểm", pending: "đang chờ", tier: "Hạng", toNext: (money, tier) => `còn ${money} để lên hạng ${tier}`,
    top: "Bạn đang ở hạng cao nhất", rewards: "Ưu đãi bạn có thể đổi", none: "Chưa có ưu đãi nào đủ điểm",
    redeem: "Đổi", confirm: "Xác nhận", cancel: "Huỷ", confirmText: (name, cost) => `Đổi ${cost} điểm lấy “${name}”?`,
    code: "Mã ưu đãi của bạn", copy: "Sao chép", copied: "Đã sao chép", recent: "Hoạt động gần đây",
    signedOut: "Đăng nhập để xem điểm và ưu đãi của bạn.", failed: "Không thực hiện được. Vui lòng thử lại.",
    busy: "Đang xử lý…", close: "Đóng", label: "Chương trình khách hàng thân thiết",
  },
  en: {
    points: "points", pending: "pending", tier: "Tier", toNext: (money, tier) => `${money} more to reach ${tier}`,
    top: "You are in the top tier", rewards: "Rewards you can redeem", none: "No reward within your points yet",
    redeem: "Redeem", confirm: "Confirm", cancel: "Cancel", confirmText: (name, cost) => `Spend ${cost} points on “${name}”?`,
    code: "Your voucher code", copy: "Copy", copied: "Copied", recent: "Recent activity",
    signedOut: "Sign in to see your points and rewards.", failed: "That did not work. Please try again.",
    busy: "Working…", close: "Close", label: "Loyalty programme",
  },
};

const STYLE = `
:host { display: block; font-family: var(--lw-font, system-ui, sans-serif); color: var(--lw-text, #1f2328);
  --lw-primary: #8a1538; --lw-on-primary: #ffffff; --lw-radius: 8px; max-width: 40rem; }
section { border: 1px solid #d0d7de; border-radius: var(--lw-radius); padding: 1rem; background: #fff; }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; } h3 { font-size: 1rem; margin: 1rem 0 .5rem; }
.balance { font-size: 1.6rem; font-weight: 700; } .muted { color: #57606a; }
progress { width: 100%; height: .75rem; accent-color: var(--lw-primary); }
ul { list-style: none; padding: 0; margin: 0; } li { display: flex; justify-content: space-between;
  gap: .5rem; align-items: center; padding: .4rem 0; border-top: 1px solid #eaeef2; flex-wrap: wrap; }
button { font: inherit; border-radius: var(--lw-radius); border: 1px solid var(--lw-primary); padding: .4rem .9rem;
  background: var(--lw-primary); color: var(--lw-on-primary); cursor: pointer; min-height: 2.5rem; }
button.secondary { background: #fff; color: var(--lw-primary); }
button:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
button[disabled] { opacity: .6; cursor: progress; }
dialog { border: 1px solid #d0d7de; border-radius: var(--lw-radius); max-width: min(28rem, 90vw); }
.code { font-family: ui-monospace, monospace; font-size: 1.2rem; letter-spacing: .05em; }
.error { color: #b3261e; } .actions { display: flex; gap: .5rem; justify-content: flex-end; margin-top: 1rem; }
img.logo { max-height: 2.5rem; max-width: 10rem; }
@media (max-width: 480px) { section { padding: .75rem; } li { flex-direction: column; align-items: flex-start; } }
`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

class LoyaltyWidget extends HTMLElement {
  static get observedAttributes() { return ["shop", "token", "lang"]; }

  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    this.root.adoptedStyleSheets = [sheet];
  }

  connectedCallback() { this.load(); }

  attributeChangedCallback(_name, before, after) { if (this.isConnected && before !== after) this.load(); }

  get words() {
    const lang = this.getAttribute("lang") || this.locale || (this.theme && this.theme.locale) || "vi";
    return WORDS[lang.slice(0, 2)] || WORDS.vi;
  }

  url(path) { return new URL(`shops/${encodeURIComponent(this.getAttribute("shop") || "")}/${path}`, API); }

  async call(path, options = {}) {
    const headers = { ...(options.headers || {}) };
    const token = this.getAttribute("token");
    if (token) headers.Authorization = `Bearer ${token}`;
    const answer = await fetch(this.url(path), { ...options, headers, credentials: "omit" });
    const body = await answer.json().catch(() => ({}));
    return { ok: answer.ok, status: answer.status, body };
  }

  money(amount, currency) {
    const locale = (this.theme && this.theme.locale) || "vi-VN";
    return new Intl.NumberFormat(locale, { style: "currency", currency }).format(Number(amount));
  }

  number(value) { return new Intl.NumberFormat((this.theme && this.theme.locale) || "vi-VN").format(value); }

  async load() {
    const serial = (this.serial = (this.serial || 0) + 1);
    const theme = await this.call("theme").catch(() => ({ ok: false }));
    this.theme = theme.ok ? theme.body : null;
    const me = this.getAttribute("token") ? await this.call("me").catch(() => ({ ok: false })) : { ok: false };
    if (serial !== this.serial) return; // a newer load (a new token) started meanwhile
    this.locale = me.ok ? me.body.locale : null;
    this.render(me.ok ? me.body : null);
  }

  render(me) {
    const w = this.words;
    const section = el("section", { "aria-label": (this.theme && this.theme.name) || w.label });
    if (this.theme && this.theme.logo_url) {
      section.append(el("img", { class: "logo", src: this.theme.logo_url, alt: this.theme.name || "" }));
    }
    if (!me) {
      section.append(el("p", { class: "signed-out", text: w.signedOut }));
      this.root.replaceChildren(section);
      return;
    }
    const points = me.balance.points;
    section.append(
      el("h2", { text: (this.theme && this.theme.name) || w.label }),
      el("p", { class: "balance", id: "balance", text: `${this.number(points.available)} ${w.points}` }),
      points.pending ? el("p", { class: "muted", text: `${this.number(points.pending)} ${w.points} ${w.pending}` }) : null,
      this.tierView(me),
      el("h3", { text: w.rewards }),
      this.rewardsView(me.rewards),
      el("h3", { text: w.recent }),
      el("ul", { id: "recent" }, ...me.recent.map((entry) => el("li", {},
        el("span", { text: entry.reason || entry.kind }),
        el("span", { text: `${entry.delta > 0 ? "+" : ""}${this.number(entry.delta)}` })))),
    );
    this.root.replaceChildren(section);
  }

  tierView(me) {
    const w = this.words;
    if (!me.tier) return null;
    const box = el("div", { class: "tier" }, el("p", { id: "tier", text: `${w.tier}: ${me.tier.tier_name}` }));
    const next = me.progress && me.progress.next;
    if (!next) { box.append(el("p", { class: "muted", text: w.top })); return box; }
    const need = next.needed[0];
    if (!need) return box;
    const have = (me.progress.qualifying || []).find((q) => q.currency === need.currency);
    const done = have ? Number(have.amount) : 0;
    const text = need.currency
      ? w.toNext(this.money(need.amount, need.currency), next.tier_name)
      : w.toNext(`${this.number(Number(need.amount))} ${w.points}`, next.tier_name);
    const label = el("p", { id: "to-next", text });
    const bar = el("progress", { max: String(done + Number(need.amount)), value: String(done), "aria-label": text });
    box.append(bar, label);
    return box;
  }

  rewardsView(rewards) {
    const w = this.words;
    if (!rewards.length) return el("p", { class: "muted", text: w.none });
    return el("ul", { id: "rewards" }, ...rewards.map((reward) => el("li", {},
      el("span", { text: `${reward.name} · ${this.number(reward.cost_points)} ${w.points}` }),
      el("button", { type: "button", class: "redeem", "data-reward": reward.code, text: w.redeem,
        "aria-label": `${w.redeem}: ${reward.name}`, onclick: () => this.confirm(reward) }))));
  }

  confirm(reward) {
    const w = this.words;
    // One key per confirmation: every retry of this dialog's request sends the same one, so
    // the customer is charged once however often the button is pressed.
    const key = crypto.randomUUID();
    const message = el("p", { id: "confirm-text", text: w.confirmText(reward.name, this.number(reward.cost_points)) });
    const status = el("p", { role: "status" });
    const dialog = el("dialog", { "aria-labelledby": "confirm-text" });
    const cancel = el("button", { type: "button", class: "secondary", text: w.cancel, onclick: () => dialog.close() });
    const go = el("button", { type: "button", id: "confirm", text: w.confirm });
    go.addEventListener("click", async () => {
      go.disabled = true;
      status.textContent = w.busy;
      const body = { reward: reward.code };
      const currency = this.theme && this.theme.currency;
      if (currency && reward.value && reward.value[currency] !== undefined) body.currency = currency;
      const answer = await this.call("me/redemptions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
        body: JSON.stringify(body),
      }).catch(() => ({ ok: false }));
      if (!answer.ok) { status.textContent = w.failed; status.className = "error"; go.disabled = false; return; }
      this.voucher(dialog, answer.body);
    });
    dialog.addEventListener("close", () => { dialog.remove(); this.load(); });
    dialog.append(message, status, el("div", { class: "actions" }, cancel, go));
    this.root.append(dialog);
    dialog.showModal();
  }

  voucher(dialog, redemption) {
    const w = this.words;
    const code = redemption.voucher_code || "";
    const copy = el("button", { type: "button", class: "secondary", text: w.copy });
    copy.addEventListener("click", async () => {
      await navigator.clipboard.writeText(code).catch(() => {});
      copy.textContent = w.copied;
    });
    const close = el("button", { type: "button", text: w.close, onclick: () => dialog.close() });
    dialog.replaceChildren(el("p", { id: "voucher-label", text: w.code }),
      el("p", { class: "code", id: "voucher", text: code }), el("div", { class: "actions" }, copy, close));
    close.focus();
  }
}

if (!customElements.get("loyalty-widget")) customElements.define("loyalty-widget", LoyaltyWidget);
