"use strict";
(function () {
  var data = JSON.parse(document.getElementById("booking-data").textContent);
  var el = function (id) { return document.getElementById(id); };
  var chosen = null;
  var when = function (iso) {
    return new Date(iso).toLocaleString([], {
      timeZone: data.time_zone, weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"
    });
  };
  var say = function (text) { el("message").textContent = text; };
  el("zone").textContent = data.time_zone;
  data.types.forEach(function (type) {
    var option = document.createElement("option");
    option.value = type.id;
    option.textContent = type.name + " (" + type.duration_minutes + " min)";
    el("type").appendChild(option);
  });
  if (data.types.length < 2) { el("type-row").hidden = true; }
  function load() {
    var list = el("slots");
    chosen = null;
    el("form").hidden = true;
    if (!data.types.length) { list.textContent = "Nothing to book here yet."; return; }
    list.textContent = "Loading free times…";
    var url = new URL(data.slots_url, window.location.href);
    url.searchParams.set("appointment_type_id", el("type").value);
    fetch(url).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      list.textContent = "";
      if (!result.ok) { list.textContent = result.body.error ? result.body.error.message : "Could not load free times."; return; }
      if (!result.body.slots.length) { list.textContent = "No free times in the next week."; return; }
      result.body.slots.forEach(function (slot) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = when(slot.start);
        button.setAttribute("aria-pressed", "false");
        button.addEventListener("click", function () {
          list.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
          button.setAttribute("aria-pressed", "true");
          chosen = slot.start;
          el("chosen").textContent = when(slot.start);
          el("form").hidden = false;
        });
        list.appendChild(button);
      });
    }).catch(function () { list.textContent = "Could not load free times."; });
  }
  el("type").addEventListener("change", load);
  el("form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!chosen) { return; }
    var contact = { email: el("email").value };
    if (el("name").value) { contact.name = el("name").value; }
    fetch(data.book_url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ appointment_type_id: el("type").value, start: chosen, contact: contact })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (result.ok) {
        say("Booked: " + when(result.body.start) + ". See you then!");
        el("form").hidden = true;
        el("slots").textContent = "";
      } else {
        say(result.body.error ? result.body.error.message : "That did not work; try another time.");
        load();
      }
    }).catch(function () { say("That did not work; try again."); });
  });
  load();
})();
