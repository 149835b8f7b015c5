"use strict";
// The installer's page: zones and the façade calibration drawn on the camera's own picture.
// Coordinates are pixels of the source frame, as in the node's YAML.
(() => {
  const $ = (id) => document.getElementById(id);
  const COLORS = ["#ffb020", "#4fc3f7", "#ff5c8a", "#6fdc8c", "#c792ea", "#f78c6c"];
  const st = { cams: [], cam: null, zones: {}, facade: null, drawing: null, drag: null, size: [1, 1] };

  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") n.textContent = v; else if (k.startsWith("on")) n.addEventListener(k.slice(2), v); else n.setAttribute(k, v);
    }
    for (const c of kids) if (c != null) n.append(c);
    return n;
  }
  function say(text, kind) { $("msg").textContent = text; $("msg").className = "msg " + (kind || ""); }

  async function load() {
    const r = await fetch("/setup/api/cameras");
    const body = await r.json();
    $("node").textContent = `节点 ${body.node_id}` + (body.writable_without_token ? "（本机可保存）" : "（保存需要节点令牌）");
    st.cams = body.items;
    $("cams").replaceChildren(...st.cams.map((c) => el("button", { type: "button", "data-cam": c.id, text: c.id, onclick: () => pick(c.id) })));
    if (st.cams.length) pick(st.cam ? st.cam.id : st.cams[0].id);
  }

  function pick(id) {
    st.cam = st.cams.find((c) => c.id === id);
    for (const b of $("cams").children) b.classList.toggle("on", b.dataset.cam === id);
    st.zones = JSON.parse(JSON.stringify(st.cam.zones || {}));
    st.facade = st.cam.facade ? JSON.parse(JSON.stringify(st.cam.facade)) : null;
    $("facade-box").hidden = !st.facade;
    if (st.facade) { $("floors").value = st.facade.floors; $("columns").value = st.facade.columns; }
    $("editor").hidden = false;
    say("");
    refresh();
    renderZones();
  }

  function refresh() {
    const img = $("shot");
    img.onload = () => { st.size = [img.naturalWidth, img.naturalHeight]; fit(); draw(); };
    img.onerror = () => { say("暂无画面（摄像头尚未出图），仍可按像素坐标编辑。", "error"); st.size = [st.cam.width || 640, st.cam.height || 360]; fit(); draw(); };
    img.src = `/setup/api/cameras/${encodeURIComponent(st.cam.id)}/snapshot.jpg?t=${Date.now()}`;
  }
  function fit() { const c = $("canvas"); c.width = st.size[0]; c.height = st.size[1]; }

  function renderZones() {
    const refs = st.cam.zone_refs || {};
    $("zones").replaceChildren(...Object.keys(st.zones).map((name, i) => el("li", {},
      el("span", {}, el("strong", { text: name, style: `color:${COLORS[i % COLORS.length]}` }), " ",
        el("span", { class: "refs", text: (refs[name] || []).join("、") || "未被管线引用" })),
      el("button", { type: "button", text: "删除", onclick: () => { delete st.zones[name]; renderZones(); draw(); } }))));
    if (!Object.keys(st.zones).length) $("zones").replaceChildren(el("li", { class: "muted", text: "暂无区域" }));
  }

  // ---------------------------------------------------------------- drawing
  function pointAt(e) {
    const c = $("canvas"), r = c.getBoundingClientRect();
    return [Math.round(((e.clientX - r.left) / r.width) * c.width), Math.round(((e.clientY - r.top) / r.height) * c.height)];
  }
  function poly(ctx, pts, color, closed) {
    if (!pts.length) return;
    ctx.strokeStyle = color; ctx.fillStyle = color + "33"; ctx.lineWidth = Math.max(2, st.size[0] / 400);
    ctx.beginPath(); pts.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (closed) { ctx.closePath(); ctx.fill(); }
    ctx.stroke();
    for (const [x, y] of pts) { ctx.fillStyle = color; ctx.fillRect(x - 4, y - 4, 8, 8); }
  }
  const lerp = (a, b, t) => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
  function drawFacade(ctx) {
    const f = st.facade; if (!f || !f.corners) return;
    const [tl, tr, br, bl] = f.corners, floors = Number($("floors").value) || f.floors, cols = Number($("columns").value) || f.columns;
    ctx.strokeStyle = "#4fc3f7"; ctx.lineWidth = 1;
    for (let k = 1; k < floors; k++) { const t = k / floors, a = lerp(tl, bl, t), b = lerp(tr, br, t); ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke(); }
    for (let k = 1; k < cols; k++) { const t = k / cols, a = lerp(tl, tr, t), b = lerp(bl, br, t); ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke(); }
    poly(ctx, f.corners, "#ff5c8a", true);
  }
  function draw() {
    const c = $("canvas"), ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    Object.values(st.zones).forEach((pts, i) => poly(ctx, pts, COLORS[i % COLORS.length], true));
    if (st.drawing) poly(ctx, st.drawing.points, "#ffffff", false);
    drawFacade(ctx);
  }
  function nearest(p) {
    const lim = Math.max(10, st.size[0] / 80);
    const sets = Object.entries(st.zones).map(([n, pts]) => [n, pts]);
    if (st.facade) sets.push(["#facade", st.facade.corners]);
    for (const [name, pts] of sets) for (let k = 0; k < pts.length; k++) {
      if (Math.hypot(pts[k][0] - p[0], pts[k][1] - p[1]) <= lim) return { name, k };
    }
    return null;
  }
  const canvas = $("canvas");
  canvas.addEventListener("mousedown", (e) => {
    const p = pointAt(e);
    if (st.drawing) { st.drawing.points.push(p); draw(); return; }
    st.drag = nearest(p);
  });
  canvas.addEventListener("mousemove", (e) => {
    if (!st.drag) return;
    const p = pointAt(e), d = st.drag;
    (d.name === "#facade" ? st.facade.corners : st.zones[d.name])[d.k] = p;
    draw();
  });
  window.addEventListener("mouseup", () => { st.drag = null; });
  canvas.addEventListener("dblclick", () => finish());
  $("floors").addEventListener("input", draw);
  $("columns").addEventListener("input", draw);

  $("new-zone").addEventListener("click", () => {
    const name = $("zone-name").value.trim();
    if (!/^[A-Za-z0-9_\-]+$/.test(name)) { say("请先填写区域名（字母、数字、下划线）。", "error"); return; }
    st.drawing = { name, points: [] };
    $("finish-zone").hidden = false;
    $("mode").textContent = `正在画「${name}」：在画面上依次点击顶点，双击或点“完成区域”结束。`;
  });
  function finish() {
    if (!st.drawing) return;
    if (st.drawing.points.length < 3) { say("区域至少需要 3 个顶点。", "error"); return; }
    st.zones[st.drawing.name] = st.drawing.points;
    st.drawing = null; $("finish-zone").hidden = true; $("mode").textContent = "";
    renderZones(); draw();
  }
  $("finish-zone").addEventListener("click", finish);
  $("refresh").addEventListener("click", refresh);

  $("save").addEventListener("click", async () => {
    const body = { zones: st.zones };
    if (st.facade) body.facade = { corners: st.facade.corners, floors: Number($("floors").value), columns: Number($("columns").value) };
    say("保存中…");
    const r = await fetch(`/setup/api/cameras/${encodeURIComponent(st.cam.id)}`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const res = await r.json().catch(() => ({}));
    if (!r.ok) {
      const issues = (res.error && res.error.issues) || [res.detail || "保存失败"];
      say("未保存，配置有误：\n" + issues.join("\n"), "error");
      return;
    }
    say(`已保存到 ${res.saved}，${res.applied ? "已生效（无需重启）" : "下次启动生效"}，用时 ${res.took_ms} 毫秒。`, "ok");
    const i = st.cams.findIndex((c) => c.id === st.cam.id);
    st.cams[i] = res.camera; st.cam = res.camera;
  });

  load();
})();
