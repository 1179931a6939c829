// The seat map of one event: it reads GET /api/events/{event}/seats with If-None-Match (a
// 304 while nothing changed) whenever the event's stream (Server-Sent Events) says something
// changed, and every 5 s besides (a hold falling due changes the map without a message), lets the visitor pick free seats or ask for the best ones, and
// holds, purchases or cancels them through the API. No framework, nothing fetched from
// elsewhere: the service serves this file from its own binary.
(function () {
  "use strict";
  const event = Number(location.pathname.split("/")[2]);
  const $ = (id) => document.getElementById(id);
  const picked = new Set();
  let etag = null;
  let map = null;
  let hold = null;

  function say(text, ok) {
    const m = $("message");
    m.textContent = text;
    m.className = ok ? "ok" : "error";
  }

  function key() {
    return (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
  }

  async function send(method, path, body) {
    const headers = { "Content-Type": "application/json", "Idempotency-Key": key() };
    const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    let json = {};
    try { json = await res.json(); } catch (_) { /* an empty answer */ }
    return { status: res.status, body: json };
  }

  function mineSet() {
    return new Set(hold && hold.status === "reserved" ? hold.seats : []);
  }

  function render() {
    const root = $("map");
    root.textContent = "";
    if (!map) return;
    const mine = mineSet();
    // A picked seat someone else took is no longer picked.
    for (const section of map.sections) {
      for (const row of section.rows) {
        row.labels.forEach((own, i) => {
          const label = section.name + "-" + row.name + "-" + own;
          if (row.status[i] !== "F") picked.delete(label);
        });
      }
    }
    for (const section of map.sections) {
      const box = document.createElement("div");
      box.className = "section";
      const h = document.createElement("h2");
      h.textContent = "Section " + section.name;
      box.appendChild(h);
      for (const row of section.rows) {
        const line = document.createElement("div");
        line.className = "row";
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = row.name;
        line.appendChild(name);
        row.labels.forEach((own, i) => {
          const label = section.name + "-" + row.name + "-" + own;
          const status = row.status[i];
          const seat = document.createElement("button");
          seat.type = "button";
          seat.className = "seat " + status;
          if (mine.has(label)) seat.classList.add("mine");
          if (picked.has(label)) seat.classList.add("picked");
          seat.dataset.seat = label;
          seat.dataset.status = status;
          seat.title = label;
          seat.setAttribute("aria-label", label + (status === "F" ? " free" : status === "H" ? " held" : " sold"));
          seat.setAttribute("aria-pressed", picked.has(label) ? "true" : "false");
          seat.textContent = own;
          seat.disabled = status !== "F";
          seat.addEventListener("click", () => {
            if (picked.has(label)) picked.delete(label); else picked.add(label);
            render();
          });
          line.appendChild(seat);
        });
        box.appendChild(line);
      }
      root.appendChild(box);
    }
    $("hold").disabled = picked.size === 0;
  }

  async function refresh() {
    const headers = etag ? { "If-None-Match": etag } : {};
    try {
      const res = await fetch("/api/events/" + event + "/seats", { headers });
      if (res.status === 200) {
        etag = res.headers.get("ETag");
        map = await res.json();
        render();
      } else if (res.status === 404) {
        say("This event has no seating plan.", false);
      }
      const info = await fetch("/api/events/" + event);
      if (info.ok) {
        const e = await info.json();
        $("title").textContent = e.name;
        $("counts").textContent = e.available + " of " + e.capacity + " seats free, " + e.reserved + " held, " + e.purchased + " sold";
      }
    } catch (_) {
      say("The service cannot be reached; retrying.", false);
    }
  }

  function showHold() {
    const panel = $("hold-panel");
    if (!hold || hold.status !== "reserved") {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    $("held-seats").textContent = hold.seats.join(", ");
  }

  function tick() {
    if (!hold || hold.status !== "reserved") return;
    const left = Math.max(0, Math.round((Date.parse(hold.expires_at) - Date.now()) / 1000));
    $("countdown").textContent = left > 0 ? "expires in " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") : "expired";
    if (left === 0) {
      hold.status = "expired";
      say("Your hold expired; the seats are free again.", false);
      showHold();
      refresh();
    }
  }

  async function reserve(body) {
    const answer = await send("POST", "/api/events/" + event + "/reserve", body);
    if (answer.status === 201) {
      hold = answer.body;
      picked.clear();
      say("Held " + hold.seats.join(", ") + ".", true);
    } else if (answer.body.error === "seat_unavailable") {
      say("Taken already: " + answer.body.seats.join(", ") + ". Nothing was held.", false);
    } else if (answer.body.error === "sold_out") {
      say("No such block of free seats is left.", false);
    } else {
      say(answer.body.message || "The hold failed (" + answer.status + ").", false);
    }
    showHold();
    tick();
    await refresh();
  }

  async function settle(action) {
    if (!hold) return;
    const answer = await send("POST", "/api/reservations/" + hold.id + "/" + action);
    if (answer.status === 200) {
      hold = answer.body;
      say(action === "purchase" ? "Purchased " + hold.seats.join(", ") + "." : "Canceled; the seats are free again.", true);
    } else {
      say(answer.body.message || action + " failed (" + answer.status + ").", false);
    }
    showHold();
    await refresh();
  }

  $("hold").addEventListener("click", () => reserve({ seats: Array.from(picked) }));
  $("best").addEventListener("click", () => reserve({
    best_available: { quantity: Number($("quantity").value) || 1, together: $("together").checked },
  }));
  $("purchase").addEventListener("click", () => settle("purchase"));
  $("cancel").addEventListener("click", () => settle("cancel"));

  refresh();
  if (window.EventSource) {
    // EventSource reconnects by itself, with Last-Event-ID.
    const stream = new EventSource("/api/events/" + event + "/stream");
    stream.addEventListener("seats", refresh);
  }
  setInterval(refresh, window.EventSource ? 5000 : 1000);
  setInterval(tick, 250);
})();
