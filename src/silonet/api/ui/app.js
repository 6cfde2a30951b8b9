// silonet console: polls the v1 API with the token kept in sessionStorage and redraws.
// Every value from the API reaches the page as a text node or an attribute value (never as
// HTML), so names chosen by users cannot inject markup.
"use strict";
(() => {
  const KEY = "silonet.token";
  const PERIOD_MS = 2000;
  const PAGE = 50;
  const AUDIT = 50;
  const MAX_LANES = 60;
  const NO_SILO = "(no silo)";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(KEY);
  let admin = false;
  let timer = null;
  let busy = false;
  let cursors = [null];  // the cursor of every attachments page visited; the last is shown
  let nextCursor = null;
  const openDetails = new Set();  // <details> the operator opened survive a redraw

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path) {
    let r;
    try {
      r = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, `server unreachable (${e.message})`);
    }
    if (!r.ok) {
      let message = `${r.status} ${r.statusText}`;
      try { const body = await r.json(); message = body.message || body.detail || message; } catch (_) { /* keep */ }
      throw new ApiError(r.status, message);
    }
    return r.json();
  }

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.setAttribute("class", v);
      else if (k === "data") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = String(dv);
      else e.setAttribute(k, String(v));
    }
  }

  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: columns }, emptyText))]));
  }

  function details(key, summary, text) {
    const d = el("details", { data: { key } }, el("summary", {}, summary), el("pre", { class: "mono" }, text));
    d.open = openDetails.has(key);
    return d;
  }

  document.addEventListener("toggle", (ev) => {
    const key = ev.target.dataset && ev.target.dataset.key;
    if (!key) return;
    if (ev.target.open) openDetails.add(key); else openDetails.delete(key);
  }, true);

  const stateCell = (state) => el("td", { class: `state ${state}` }, state);
  const dash = (v) => (v === null || v === undefined ? "\u2014" : v);
  const vlanText = (v) => (v === 0 ? "untagged" : String(v));
  const clock = (d) => d.toLocaleTimeString([], { hour12: false });

  function since(iso) {
    if (!iso) return "\u2014";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : new Date(iso).toLocaleString();
  }

  const WORST_FIRST = ["failed", "degraded", "held", "pending"];
  function overall(statuses) {
    return WORST_FIRST.find((s) => statuses.includes(s)) || (statuses.length ? "realized" : "unknown");
  }

  // What a gateway reports beside its state: port faults and bindings it refused or found taken.
  const faultsOf = (st) => [
    ...Object.entries(st.faults || {}).map(([port, f]) => `${port}: ${f.join(", ")}`),
    ...Object.entries(st.binding_errors || {}).map(([b, why]) => `${b}: ${why}`),
  ];

  // Label widths, measured as drawn (system-ui): a label longer than its room is cut with "...".
  const measure = document.createElement("canvas").getContext("2d");
  function textWidth(text, size, bold) {
    measure.font = `${bold ? "600 " : ""}${size}px system-ui, "DejaVu Sans", sans-serif`;
    return measure.measureText(text).width;
  }
  function fit(text, px, size, bold) {
    if (textWidth(text, size, bold) <= px) return text;
    let n = text.length;
    while (n > 1 && textWidth(`${text.slice(0, n)}\u2026`, size, bold) > px) n -= 1;
    return `${text.slice(0, n)}\u2026`;
  }

  // ---------------------------------------------------------------------- topology
  function siloOfAttachment(a, groupSilo, gatewaySilo) {
    const s = groupSilo.get(a.interface_group);
    if (s) return s;
    const fromGateways = (a.gateways || []).map((g) => gatewaySilo.get(g.gateway)).find(Boolean);
    return fromGateways || NO_SILO;
  }

  function drawTopology(silos, gateways, groups, networks, statusByGw) {
    // A metro map: silos are columns, each virtual network a row whose line joins the silos it
    // reaches, with a pill per silo naming its groups and VLANs. Columns shrink to the panel's
    // width (the drawing scales down past that), every label is cut to its room: no horizontal
    // scrolling, no label over a line.
    const host = $("topology");
    const groupSilo = new Map(groups.map((g) => [g.name, g.silo]));
    const gatewaySilo = new Map(gateways.map((g) => [g.name, g.silo]));
    const names = silos.map((s) => s.name);
    const kinds = new Map(silos.map((s) => [s.name, s.kind]));
    if (gateways.some((g) => !g.silo) || groups.some((g) => !g.silo)) names.push(NO_SILO);
    const lanes = networks.slice(0, MAX_LANES).map((n) => {
      const where = new Map();  // silo -> group -> [VLAN text, ...]
      const seen = new Map();  // silo -> the statuses of its attachments
      for (const a of n.attachments) {
        const s = siloOfAttachment(a, groupSilo, gatewaySilo);
        if (!names.includes(s)) names.push(s);
        if (!where.has(s)) { where.set(s, new Map()); seen.set(s, []); }
        const byGroup = where.get(s);
        if (!byGroup.has(a.interface_group)) byGroup.set(a.interface_group, []);
        byGroup.get(a.interface_group).push(vlanText(a.vlan));
        seen.get(s).push(a.status);
      }
      return { net: n, where, seen, state: overall(n.attachments.map((a) => a.status)) };
    });
    if (!names.length) {
      host.replaceChildren(el("p", { class: "muted" }, "No silos yet: `silonet apply -f inventory.yaml` adds them."));
      return;
    }

    const LEFT = 170, TOP = 12, ROW = 24, LANE = 36, GAP = 12;
    const room = Math.max(host.clientWidth || 0, 600);
    const COL = Math.max(150, Math.min(250, Math.floor((room - LEFT - 4) / names.length)));
    const BOX = COL - GAP;
    const rowsOf = (s) => gateways.filter((g) => (g.silo || NO_SILO) === s).length
      + groups.filter((g) => (g.silo || NO_SILO) === s).length;
    const boxH = 52 + ROW * Math.max(1, ...names.map(rowsOf)) + 6;
    const lane0 = TOP + boxH + 30;
    const extra = networks.length > MAX_LANES ? 1 : 0;
    const width = LEFT + COL * names.length;
    const height = lane0 + LANE * Math.max(lanes.length + extra, 1);
    const root = svg("svg", { width: Math.min(width, room), height: Math.round(height * Math.min(1, room / width)),
      viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "silos, gateways, interface groups and the virtual networks joining them" });
    const colX = new Map(names.map((s, i) => [s, LEFT + i * COL]));
    const mid = (s) => colX.get(s) + BOX / 2;

    for (const s of names) {  // a faint guide down each column, under everything else
      root.append(svg("line", { class: "col-guide", x1: mid(s), y1: TOP + boxH, x2: mid(s), y2: height - 4 }));
    }
    for (const s of names) {
      const x = colX.get(s);
      const g = svg("g", { class: "silo", data: { silo: s } });
      g.append(svg("rect", { class: "silo-box", x, y: TOP, width: BOX, height: boxH, rx: 6 }));
      g.append(svg("text", { class: "silo-name", x: x + 10, y: TOP + 20 }, fit(s, BOX - 20, 13, true)));
      g.append(svg("text", { class: "silo-kind", x: x + 10, y: TOP + 36 }, fit(kinds.get(s) || "", BOX - 20, 11)));
      g.append(svg("title", {}, s));
      let y = TOP + 48;
      for (const gw of gateways.filter((d) => (d.silo || NO_SILO) === s)) {
        const st = statusByGw ? statusByGw.get(gw.name) : null;
        const leaving = st && st.state === "decommissioning";  // being cleaned, then forgotten
        const state = st ? (st.reachable === false && !leaving ? "failed" : st.state) : "unknown";
        const label = st ? (st.reachable === false ? (leaving ? "decommissioning, unreachable" : "unreachable")
          : st.state) : gw.vtep_ip;
        const faults = st ? faultsOf(st) : [];
        const gg = svg("g", { class: `gw ${state}${faults.length ? " faulted" : ""}`,
          data: { gateway: gw.name, state, faults: faults.length } });
        gg.append(svg("rect", { class: "gw-box", x: x + 8, y, width: BOX - 16, height: ROW - 4, rx: 3 }));
        gg.append(svg("circle", { class: `gw-dot ${state}`, cx: x + 20, cy: y + 10, r: 5 }));
        // the name and the state share the row: each whole if both fit, else the name keeps at
        // least half of it and the state the rest
        const mark = faults.length ? `\u26a0${faults.length} ` : "";
        const avail = BOX - 50, nameW = textWidth(gw.name, 12), labelW = textWidth(mark + label, 11);
        const nameRoom = nameW + labelW <= avail ? nameW : Math.max(avail - labelW, Math.min(nameW, avail / 2));
        const shown = fit(label, avail - nameRoom - textWidth(mark, 11), 11);
        gg.append(svg("text", { x: x + 32, y: y + 14 }, fit(gw.name, nameRoom + 0.5, 12)));
        const caption = svg("text", { class: "caption", x: x + BOX - 14, y: y + 14, "text-anchor": "end" });
        if (mark) caption.append(svg("tspan", { class: "fault-mark" }, mark));
        caption.append(svg("tspan", {}, shown));
        gg.append(caption);
        const why = [st && st.last_error, ...faults].filter(Boolean);
        gg.append(svg("title", {}, why.length ? `${gw.name}: ${why.join("; ")}` : `${gw.name} (${gw.vtep_ip}${gw.pair ? `, anycast VTEP of pair ${gw.pair}` : ""})`));
        g.append(gg);
        y += ROW;
      }
      for (const grp of groups.filter((d) => (d.silo || NO_SILO) === s)) {
        const gg = svg("g", { class: "group", data: { group: grp.name } });
        gg.append(svg("rect", { class: "group-box", x: x + 8, y, width: BOX - 16, height: ROW - 4, rx: 3 }));
        const ports = `${grp.members.length} port${grp.members.length === 1 ? "" : "s"}`;
        gg.append(svg("text", { x: x + 16, y: y + 14 }, fit(grp.name, BOX - 40 - textWidth(ports, 11), 12)));
        gg.append(svg("text", { class: "caption", x: x + BOX - 14, y: y + 14, "text-anchor": "end" }, ports));
        gg.append(svg("title", {}, `interface group ${grp.name}, ${ports}`));
        g.append(gg);
        y += ROW;
      }
      root.append(g);
    }

    lanes.forEach(({ net, where, seen, state }, i) => {
      const y = lane0 + i * LANE;
      const g = svg("g", { class: `net ${state}`, data: { network: net.name, vni: net.vni, state } });
      g.append(svg("text", { class: "net-label", x: 10, y: y - 2 }, fit(net.name, LEFT - 20, 12, true)));
      g.append(svg("text", { class: "caption", x: 10, y: y + 12 }, fit(`VNI ${net.vni} \u00b7 ${net.tenant}`, LEFT - 20, 11)));
      const xs = [...where.keys()].map(mid);
      if (xs.length) {
        const x0 = Math.min(...xs), x1 = Math.max(...xs);
        g.append(svg("line", { class: "net-leader", x1: LEFT - 8, y1: y, x2: x0, y2: y }));
        g.append(svg("line", { class: "net-line", x1: x0, y1: y, x2: Math.max(x1, x0 + 1), y2: y }));
        for (const [s, byGroup] of where) {
          const text = [...byGroup].map(([grp, vlans]) => `${grp} ${vlans.join(", ")}`).join("; ");
          const shown = fit(text, BOX - 14, 11);
          const w = textWidth(shown, 11) + 12;
          const here = overall(seen.get(s));  // its own colour: degraded here, failed there
          const pill = svg("g", { class: `vlan-pill ${here}`, data: { silo: s, state: here } });
          pill.append(svg("rect", { class: "vlan-bg", x: mid(s) - w / 2, y: y - 9, width: w, height: 18, rx: 9 }));
          pill.append(svg("text", { class: "vlan-label", x: mid(s), y: y + 4, "text-anchor": "middle",
            data: { silo: s } }, shown));
          pill.append(svg("title", {}, `${s}: ${text} (${here})`));
          g.append(pill);
        }
      } else {
        g.append(svg("text", { class: "caption", x: LEFT, y: y + 4 }, "no attachments"));
      }
      g.append(svg("title", {}, `${net.name}: VNI ${net.vni}, tenant ${net.tenant}, ${state}`));
      root.append(g);
    });
    if (extra) {
      root.append(svg("text", { class: "caption", x: 10, y: lane0 + lanes.length * LANE + 4 },
        `+${networks.length - MAX_LANES} more networks not drawn: see the table below`));
    }
    if (!networks.length) root.append(svg("text", { class: "caption", x: 10, y: lane0 + 4 }, "no virtual networks"));
    host.replaceChildren(root);
  }

  // ------------------------------------------------------------------------ tables
  function drawGateways(gateways, statuses) {
    const byName = new Map(gateways.map((g) => [g.name, g]));
    const rows = statuses.map((st) => {
      const gw = byName.get(st.gateway) || {};
      const faults = faultsOf(st);
      const reach = st.reachable === null ? el("td", {}, "not tried")
        : el("td", { class: st.reachable ? "yes" : "no" }, st.reachable ? "yes" : "no");
      const state = stateCell(st.state);
      if (faults.length) {  // realized, yet something on the device is not as it should be
        state.append(" ", el("span", { class: "fault-mark", title: faults.join("\n") },
          `\u26a0 ${faults.length} fault${faults.length === 1 ? "" : "s"}`));
      }
      // desired first, then how far the device got; realized may run ahead of a gateway's desired
      // generation (it is the intent's generation it last matched), which is in sync, not ahead
      const behind = st.realized_generation < st.desired_generation;
      return el("tr", { data: { gateway: st.gateway, state: st.state, reachable: String(st.reachable),
        faults: faults.length } },
        // a member of a redundant pair: while its partner carries the traffic, it down only degrades
        el("td", {}, st.gateway, st.pair ? el("span", { class: "caption", title: "redundant pair (anycast VTEP "
          + (gw.vtep_ip || "?") + ")" }, ` pair ${st.pair}`) : ""), el("td", {}, dash(gw.silo)), state, reach,
        el("td", { class: "num", data: { col: "desired" } }, st.desired_generation),
        el("td", { class: `num${behind ? " behind" : ""}`, data: { col: "realized" },
          title: behind ? `behind by ${st.desired_generation - st.realized_generation}` : "in sync" },
          behind ? `${st.realized_generation} (behind)` : `${st.realized_generation} \u2713`),
        el("td", { class: "num" }, dash(st.drift)),
        el("td", { class: "wrap" }, faults.length ? faults.join("; ") : "\u2014"),
        el("td", { class: "wrap error-text" }, st.last_error || ""),
        el("td", {}, since(st.last_contact)), el("td", {}, dash(st.owner)));
    });
    fill($("gateways").tBodies[0], rows, 11, "no gateways");
  }

  function drawNetworks(networks) {
    const rows = networks.map((n) => el("tr", { data: { network: n.name } },
      el("td", {}, n.name), el("td", {}, n.tenant), el("td", { class: "num" }, n.vni),
      el("td", {}, ...n.attachments.map((a) => el("span", { class: `chip state ${a.status}` },
        `${a.interface_group} ${vlanText(a.vlan)}`))),
      stateCell(overall(n.attachments.map((a) => a.status)))));
    fill($("networks").tBodies[0], rows, 5, "no virtual networks");
  }

  // A tenant's contract: an admin reads every record, a tenant token its own (none: not limited).
  function drawTenants(tenants) {
    const used = (n, max) => el("td", { class: `num${max !== null && n >= max ? " full" : ""}`,
      title: max === null ? "no limit" : `${Math.max(0, max - n)} left` }, max === null ? `${n} / \u221e` : `${n} / ${max}`);
    const rows = tenants.map((t) => el("tr", { data: { tenant: t.name, networks: t.use.networks,
      attachments: t.use.attachments } },
      el("td", {}, t.name),
      el("td", {}, ...(t.interface_groups.length ? t.interface_groups.map((g) => el("span", { class: "chip" }, g))
        : [el("span", { class: "muted" }, "none granted")])),
      el("td", { class: "num" }, t.vni_pool ? `${t.vni_pool.first}\u2013${t.vni_pool.last}` : "\u2014"),
      used(t.use.networks, t.max_networks), used(t.use.attachments, t.max_attachments)));
    fill($("tenants").tBodies[0], rows, 5, admin ? "no tenant has a contract: every tenant is unlimited"
      : "no contract: this tenant is not limited");
  }

  function drawAttachments(page) {
    const want = $("filter-status").value;
    const items = want ? page.items.filter((a) => a.status === want) : page.items;
    const rows = items.map((a) => el("tr", { data: { network: a.network, group: a.interface_group, status: a.status } },
      el("td", {}, a.network), el("td", {}, a.interface_group), el("td", { class: "num" }, vlanText(a.vlan)),
      el("td", { class: "num" }, a.vni), el("td", { class: "num" }, a.generation), stateCell(a.status),
      el("td", {}, ...a.gateways.map((g) => el("span", { class: `chip state ${g.status}`, title: g.reason || "" },
        `${g.gateway} ${g.status}`))),
      el("td", { class: "wrap" }, a.reason || "")));
    fill($("attachments").tBodies[0], rows, 8, "no attachments match");
    nextCursor = page.next_cursor;
    $("page-prev").disabled = cursors.length <= 1;
    $("page-next").disabled = !nextCursor;
    const hidden = page.items.length - items.length;
    $("page-info").textContent = `page ${cursors.length}: ${items.length} shown` + (hidden ? `, ${hidden} filtered out` : "");
  }

  function drawPlan(plan) {
    const busyGws = plan.gateways.filter((g) => g.operations.length);
    const ops = busyGws.reduce((n, g) => n + g.operations.length, 0);
    $("plan-summary").textContent = ops
      ? `generation ${plan.generation}: ${ops} operation${ops === 1 ? "" : "s"} to do on ${busyGws.length} gateway(s)`
      : `generation ${plan.generation}: nothing to do, every gateway read matches the intent`;
    const rows = plan.gateways.map((g) => el("tr", { data: { gateway: g.gateway } },
      el("td", {}, g.gateway), el("td", {}, g.actual_known ? "yes" : "not yet"),
      el("td", { class: "num" }, `${g.entries} / ${g.capacity}`),
      el("td", {}, g.operations.length
        ? details(`plan:${g.gateway}`, `${g.operations.length} operation(s)`,
          g.operations.slice(0, 200).map((o) => JSON.stringify(o)).join("\n"))
        : "none")));
    fill($("plan").tBodies[0], rows, 4, "no gateways");
  }

  function drawAudit(entries) {
    const rows = entries.map((e) => el("tr", { data: { id: e.id } },
      el("td", { class: "num" }, e.id), el("td", {}, new Date(e.time).toLocaleString([], { hour12: false })),
      el("td", {}, e.actor), el("td", {}, e.action), el("td", {}, e.object),
      el("td", {}, e.before || e.after
        ? details(`audit:${e.id}`, "before / after", JSON.stringify({ before: e.before, after: e.after }, null, 2))
        : "")));
    fill($("audit").tBodies[0], rows, 6, "no entries");
  }

  function setOptions(select, values) {
    const current = select.value;
    const keep = new Set(values);
    if (current) keep.add(current);
    const options = [el("option", { value: "" }, "any"), ...[...keep].sort().map((v) => el("option", { value: v }, v))];
    select.replaceChildren(...options);
    select.value = current;
  }

  // ----------------------------------------------------------------------- refresh
  function attachmentsUrl() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    if ($("filter-network").value) q.set("network", $("filter-network").value);
    if ($("filter-group").value) q.set("interface_group", $("filter-group").value);
    return `/v1/attachments?${q}`;
  }

  // A panel is rebuilt only when what it shows changed: no flicker, an open <details> stays
  // open, and what the operator (or a test) is looking at is not replaced under them.
  const drawn = new Map();
  function redraw(key, inputs, draw) {
    const sig = JSON.stringify(inputs);
    if (drawn.get(key) === sig) return;
    draw();
    drawn.set(key, sig);
  }

  async function refresh() {
    if (busy || !token) return;
    busy = true;
    try {
      const calls = [api("/v1/silos"), api("/v1/gateways"), api("/v1/interface-groups"), api("/v1/networks"),
        api(attachmentsUrl()), api("/v1/tenants")];
      if (admin) calls.push(api("/v1/status"), api("/v1/plan"), api(`/v1/audit?limit=${AUDIT}`));
      const [silos, gateways, groups, networks, page, tenants, status, plan, audit] = await Promise.all(calls);
      const statusByGw = status ? new Map(status.map((s) => [s.gateway, s])) : null;
      redraw("topology", [silos, gateways, groups, networks, status], () =>
        drawTopology(silos, gateways, groups, networks, statusByGw));
      redraw("networks", [networks], () => drawNetworks(networks));
      redraw("tenants", [tenants], () => drawTenants(tenants));
      redraw("filters", [networks.map((n) => n.name), groups.map((g) => g.name)], () => {
        setOptions($("filter-network"), networks.map((n) => n.name));
        setOptions($("filter-group"), groups.map((g) => g.name));
      });
      redraw("attachments", [page, $("filter-status").value], () => drawAttachments(page));
      if (admin) {
        redraw("gateways", [gateways, status], () => drawGateways(gateways, status));
        redraw("plan", [plan], () => drawPlan(plan));
        redraw("audit", [audit], () => drawAudit(audit));
      }
      const now = new Date();
      $("refreshed").textContent = `refreshed ${clock(now)} \u00b7 every ${PERIOD_MS / 1000} s`;
      $("refreshed").dataset.at = String(now.getTime());
      $("refresh-error").hidden = true;
    } catch (e) {
      if (e.status === 401) { logout(`token rejected: ${e.message}`); return; }
      $("refresh-error").textContent = `refresh failed at ${clock(new Date())}: ${e.message}`;
      $("refresh-error").hidden = false;
    } finally {
      busy = false;
    }
  }

  function resetPaging() { cursors = [null]; refresh(); }

  // ------------------------------------------------------------------ login, logout
  async function start() {
    // The role decides which panels exist: a tenant token gets 403 on the operator-only endpoints.
    try {
      await api("/v1/networks");
      try {
        await api("/v1/status");
        admin = true;
        $("role").textContent = "admin";
      } catch (e) {
        if (e.status !== 403) throw e;
        admin = false;
        const m = /tenant '([^']*)'/.exec(e.message);
        $("role").textContent = m ? `tenant ${m[1]}` : "tenant";
      }
    } catch (e) {
      logout(e.status === 401 ? `token rejected: ${e.message}` : e.message);
      return;
    }
    for (const p of document.querySelectorAll(".admin-only")) p.hidden = !admin;
    $("login").hidden = true;
    $("console").hidden = false;
    $("session").hidden = false;
    $("console").dataset.role = admin ? "admin" : "tenant";
    cursors = [null];
    await refresh();
    clearInterval(timer);
    timer = setInterval(refresh, PERIOD_MS);
  }

  function logout(message) {
    clearInterval(timer);
    timer = null;
    token = null;
    admin = false;
    sessionStorage.removeItem(KEY);
    drawn.clear();
    for (const id of ["topology"]) $(id).replaceChildren();
    for (const t of document.querySelectorAll("#console tbody")) t.replaceChildren();
    $("console").hidden = true;
    $("session").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("login-error").hidden = !message;
    $("token").value = "";
    $("token").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    fetch("/healthz").then((r) => r.json()).then((h) => { $("version").textContent = h.version || ""; })
      .catch(() => { /* the version is decoration */ });
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      token = $("token").value.trim();
      if (!token) return;
      sessionStorage.setItem(KEY, token);
      start();
    });
    $("logout").addEventListener("click", () => logout(""));
    for (const id of ["filter-network", "filter-group"]) $(id).addEventListener("change", resetPaging);
    $("filter-status").addEventListener("change", () => refresh());
    let resized = null;  // the topology is laid out for the panel's width: draw it again for the new one
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(() => { drawn.delete("topology"); refresh(); }, 250);
    });
    $("page-next").addEventListener("click", () => { if (nextCursor) { cursors.push(nextCursor); refresh(); } });
    $("page-prev").addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); refresh(); } });
    if (token) start(); else logout("");
  });
})();
