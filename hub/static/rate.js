"use strict";
// The citizen's rating page (/r/{code}): no account, the code in the link names the order.
(() => {
  const code = decodeURIComponent(location.pathname.split("/").pop() || "");
  const $ = (id) => document.getElementById(id);
  const api = `/api/v1/ratings/${encodeURIComponent(code)}`;

  function show(order) {
    $("what").textContent = `${order.type_name}${order.place ? " · " + order.place : ""}：${order.summary}`;
    $("state").textContent = order.rating ? `已评价：${order.rating} 分，谢谢您！` : `当前进度：${order.step}`;
    $("rate-form").hidden = !order.can_rate;
    if (!order.can_rate && !order.rating) $("msg").textContent = "处理完成并核查后即可评价，请稍后再来。";
  }

  async function load() {
    const r = await fetch(api);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) { $("what").textContent = body.detail || "评价链接无效"; return; }
    show(body);
  }

  $("rate-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    $("rate-submit").disabled = true;
    $("msg").textContent = "";
    try {
      const r = await fetch(api, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating: Number(data.get("rating")), comment: String(data.get("comment") || "") }),
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) { $("msg").textContent = "未能提交：" + (body.detail || "请稍后再试"); return; }
      $("msg").textContent = "评价已提交，谢谢您！";
      show(body);
    } catch (err) {
      $("msg").textContent = "网络不通，未能提交，请稍后再试（已填写的内容仍保留）。";
    } finally {
      $("rate-submit").disabled = false;
    }
  });

  load();
})();
