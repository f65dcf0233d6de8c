// The dashboard of `riffle serve`: polls ../api/v1/dashboard once a second (the JSON of
// docs/DASHBOARD.md), keeps the points it has seen, and draws one card per model with headline
// numbers and small SVG charts. Plain JavaScript, no library: the page must work offline and
// without a build step.
//
// After the first answer it asks only for the points after the last one it has (?since=), so a
// poll costs the server a few samples, not the whole history. Each chart carries data-* attributes
// (data-state, data-points, data-last, data-last-time) that say what it shows, for tests and
// for anyone inspecting the page.
'use strict';

(() => {
  const POLL_MS = 1000;
  const API = '../api/v1/dashboard';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  // Samples further apart than this are drawn as a gap (the server samples once a second).
  const GAP_SECONDS = 3.5;
  // The charts' time axis spans at least this much, so the first seconds are not stretched.
  const MIN_SPAN_SECONDS = 60;

  // ---------------------------------------------------------------------------------------
  // Number formats

  const fmtRatio = (v) => v.toFixed(3);
  const fmtNumber = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  const fmtRate = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const fmtCount = (v) => Math.round(v).toLocaleString('en-US');
  const fmtSeconds = (v) => {
    if (v === 0) return '0';
    if (v < 1e-3) return `${(v * 1e6).toPrecision(3)} µs`;
    if (v < 1) return `${(v * 1e3).toPrecision(3)} ms`;
    return `${v.toPrecision(3)} s`;
  };
  const fmtTime = (seconds) => new Date(seconds * 1000).toLocaleTimeString('en-GB');

  // ---------------------------------------------------------------------------------------
  // What is drawn. Series keys are those of the JSON (docs/DASHBOARD.md).

  const CHARTS = [
    {id: 'quality', title: 'Rolling accuracy · ROC AUC', fmt: fmtRatio, range: [0, 1],
     lines: [['accuracy', 'accuracy'], ['roc_auc', 'ROC AUC']]},
    {id: 'log_loss', title: 'Rolling log loss', fmt: fmtNumber, lines: [['log_loss', 'log loss']]},
    {id: 'throughput', title: 'Throughput (per second)', fmt: fmtRate,
     lines: [['events_per_second', 'events'], ['predictions_per_second', 'predictions']]},
    {id: 'predict_latency', title: 'Predict latency', fmt: fmtSeconds,
     lines: [['predict_latency_p50_seconds', 'p50'], ['predict_latency_p95_seconds', 'p95'],
             ['predict_latency_p99_seconds', 'p99']]},
    {id: 'event_to_prediction', title: 'Kafka event → prediction', fmt: fmtSeconds, kafka: true,
     lines: [['event_to_prediction_p50_seconds', 'p50'], ['event_to_prediction_p95_seconds', 'p95'],
             ['event_to_prediction_p99_seconds', 'p99']]},
    {id: 'kafka_lag', title: 'Kafka consumer lag (records)', fmt: fmtCount, kafka: true,
     axis: (v) => (Number.isInteger(v) ? fmtCount(v) : v.toFixed(1)),
     lines: [['kafka_lag_records', 'lag']]},
  ];

  const STATS = [
    {id: 'accuracy', label: 'rolling accuracy', key: 'accuracy', fmt: fmtRatio},
    {id: 'log_loss', label: 'rolling log loss', key: 'log_loss', fmt: fmtNumber},
    {id: 'roc_auc', label: 'rolling ROC AUC', key: 'roc_auc', fmt: fmtRatio},
    {id: 'events_per_second', label: 'events/s', key: 'events_per_second', fmt: fmtRate},
    {id: 'predictions_per_second', label: 'predictions/s', key: 'predictions_per_second',
     fmt: fmtRate},
    {id: 'predict_p99', label: 'predict p99', key: 'predict_latency_p99_seconds', fmt: fmtSeconds},
    {id: 'kafka_lag', label: 'Kafka lag', key: 'kafka_lag_records', fmt: fmtCount},
  ];

  // ---------------------------------------------------------------------------------------
  // State: what the page has received so far.

  const state = {
    since: 0,          // the `now` of the last answer: the next request asks for what follows
    now: 0,            // the server's last sample time
    retention: 600,    // seconds of history the server keeps (and the page too)
    windows: {},
    flaggedAvailable: false,
    models: new Map(), // name -> model state (below)
    updates: 0,
  };

  function newModel(name) {
    return {name, learner: '', lastSeen: 0, series: new Map(), present: new Set(),
            classes: null, driftTotal: null, drift: [], flagged: [], card: null};
  }

  // Adds one answer to the state. An answer for since=0 replaces everything.
  function merge(data) {
    if (data.since === 0) {
      for (const model of state.models.values()) if (model.card) model.card.remove();
      state.models.clear();
    }
    state.now = data.now;
    if (data.now > 0) state.since = data.now;
    state.retention = data.retention_seconds;
    state.windows = data.windows;
    state.flaggedAvailable = data.flagged_available;
    const horizon = data.now - data.retention_seconds;
    const seen = new Set();
    for (const m of data.models) {
      seen.add(m.name);
      let model = state.models.get(m.name);
      if (!model) {
        model = newModel(m.name);
        state.models.set(m.name, model);
      }
      model.learner = m.learner;
      model.lastSeen = m.last_seen;
      model.present = new Set(Object.keys(m.series));
      for (const [key, points] of Object.entries(m.series)) {
        const kept = model.series.get(key) || [];
        const last = kept.length ? kept[kept.length - 1][0] : -Infinity;
        for (const p of points) if (p[0] > last) kept.push(p);
        model.series.set(key, kept);
      }
      for (const [key, points] of model.series) {
        if (!model.present.has(key)) {
          model.series.delete(key);
          continue;
        }
        let drop = 0;
        while (drop < points.length && points[drop][0] < horizon) drop++;
        if (drop) points.splice(0, drop);
      }
      model.classes = m.class_distribution;
      model.driftTotal = m.drift_detections_total;
      model.drift = model.drift.concat(m.drift_events).filter((e) => e.time >= horizon);
      model.flagged = m.flagged;
    }
    for (const [name, model] of state.models) {
      if (!seen.has(name)) {
        if (model.card) model.card.remove();
        state.models.delete(name);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // DOM helpers

  function el(tag, attrs = {}, text = '') {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  }

  function svgEl(tag, attrs = {}, text = '') {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text) e.textContent = text;
    return e;
  }

  const lastPoint = (points) => (points && points.length ? points[points.length - 1] : null);

  // ---------------------------------------------------------------------------------------
  // A model's card

  function buildCard(model) {
    const card = el('section', {class: 'card', 'data-model': model.name});
    const head = el('header');
    head.append(el('h2', {}, model.name), el('span', {class: 'learner'}),
                el('span', {class: 'seen'}));
    const headline = el('div', {class: 'headline'});
    for (const s of STATS) {
      const stat = el('div', {class: 'stat', 'data-stat': s.id});
      stat.append(el('span', {class: 'label'}, s.label), el('span', {class: 'value'}, '–'));
      headline.append(stat);
    }
    const charts = el('div', {class: 'charts'});
    for (const c of CHARTS) {
      const fig = el('figure', {class: 'chart', 'data-chart': c.id, 'data-state': 'empty',
                                'data-points': '0'});
      const caption = el('figcaption');
      caption.append(el('span', {class: 'title'}, c.title), el('span', {class: 'legend'}));
      fig.append(caption, svgEl('svg', {role: 'img', 'aria-label': c.title}));
      charts.append(fig);
    }
    const classes = el('figure', {class: 'chart', 'data-chart': 'classes', 'data-state': 'empty',
                                  'data-points': '0'});
    const classCaption = el('figcaption');
    classCaption.append(el('span', {class: 'title'}, 'Predicted classes (recent)'),
                        el('span', {class: 'legend'}));
    classes.append(classCaption, svgEl('svg', {role: 'img', 'aria-label': 'predicted classes'}));
    charts.append(classes);
    const kafkaNote = el('p', {class: 'note kafka-note'},
                         'No Kafka path for this model: Kafka lag and event-to-prediction ' +
                         'latency are not shown.');
    const flagged = el('table', {class: 'flagged', 'data-rows': '0'});
    card.append(head, headline, charts, kafkaNote, flagged);
    return card;
  }

  function renderCard(model) {
    if (!model.card) {
      model.card = buildCard(model);
      document.getElementById('models').append(model.card);
    }
    const card = model.card;
    card.querySelector('.learner').textContent = model.learner;
    const stale = state.now - model.lastSeen;
    card.querySelector('.seen').textContent =
        stale > 5 ? `not reported for ${Math.round(stale)} s (deleted?)` : '';

    for (const s of STATS) {
      const stat = card.querySelector(`[data-stat="${s.id}"]`);
      const present = model.present.has(s.key);
      stat.hidden = !present;
      const p = lastPoint(model.series.get(s.key));
      stat.querySelector('.value').textContent = p ? s.fmt(p[1]) : '–';
    }
    let drift = card.querySelector('[data-stat="drift"]');
    if (model.driftTotal !== null && !drift) {
      drift = el('div', {class: 'stat', 'data-stat': 'drift'});
      drift.append(el('span', {class: 'label'}, 'drift detections'),
                   el('span', {class: 'value'}));
      card.querySelector('.headline').append(drift);
    }
    if (drift) {
      drift.hidden = model.driftTotal === null;
      drift.querySelector('.value').textContent =
          model.driftTotal === null ? '–' : fmtCount(model.driftTotal);
    }

    const hasKafka = CHARTS.some((c) => c.kafka && c.lines.some(([k]) => model.present.has(k)));
    for (const c of CHARTS) {
      const fig = card.querySelector(`[data-chart="${c.id}"]`);
      fig.hidden = c.kafka && !hasKafka;
      drawChart(fig, c, model);
    }
    card.querySelector('.kafka-note').hidden = hasKafka;
    drawClasses(card.querySelector('[data-chart="classes"]'), model);
    drawFlagged(card.querySelector('table.flagged'), model);
  }

  // ---------------------------------------------------------------------------------------
  // Charts

  function setChartData(fig, st, points, last) {
    fig.dataset.state = st;
    fig.dataset.points = String(points);
    if (last) {
      fig.dataset.last = String(last[1]);
      fig.dataset.lastTime = String(last[0]);
    } else {
      delete fig.dataset.last;
      delete fig.dataset.lastTime;
    }
  }

  function message(svg, w, h, text) {
    svg.append(svgEl('text', {x: w / 2, y: h / 2, 'text-anchor': 'middle', class: 'nodata'},
                     text));
  }

  // Clears a figure's SVG (sized to its box) and legend for a redraw.
  function resetFigure(fig) {
    const svg = fig.querySelector('svg');
    const w = Math.max(Math.round(svg.getBoundingClientRect().width), 200);
    const h = 120;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.replaceChildren();
    const legend = fig.querySelector('.legend');
    legend.replaceChildren();
    return {svg, w, h, legend};
  }

  function drawChart(fig, chart, model) {
    const {svg, w, h, legend} = resetFigure(fig);

    const lines = chart.lines.filter(([key]) => model.present.has(key))
                      .map(([key, label], i) => ({key, label, i,
                                                  points: model.series.get(key) || []}));
    if (!lines.length) {
      setChartData(fig, 'absent', 0, null);
      message(svg, w, h, 'not reported by this model');
      return;
    }
    const total = lines.reduce((n, l) => n + l.points.length, 0);
    for (const l of lines) {
      const p = lastPoint(l.points);
      const item = el('span');
      item.append(el('span', {class: `swatch s${l.i}`}),
                  document.createTextNode(`${l.label} ${p ? chart.fmt(p[1]) : '–'}`));
      legend.append(item);
    }
    if (!total) {
      setChartData(fig, 'empty', 0, null);
      message(svg, w, h, 'no data yet');
      return;
    }
    setChartData(fig, 'data', total, lastPoint(lines[0].points) ||
                 lastPoint(lines.find((l) => l.points.length).points));

    // Scales: time over the kept history (at least MIN_SPAN_SECONDS), values from 0 (or the
    // chart's fixed range) to the largest value with a little headroom.
    const left = 48, right = 6, top = 6, bottom = 16;
    let first = Infinity;
    let max = -Infinity, min = Infinity;
    for (const l of lines) {
      for (const [t, v] of l.points) {
        first = Math.min(first, t);
        max = Math.max(max, v);
        min = Math.min(min, v);
      }
    }
    const x1 = state.now;
    const x0 = x1 - Math.min(state.retention, Math.max(MIN_SPAN_SECONDS, x1 - first));
    let [y0, y1] = chart.range || [Math.min(0, min), max > 0 ? max * 1.15 : 1];
    if (y1 <= y0) y1 = y0 + 1;
    const X = (t) => left + (w - left - right) * (t - x0) / (x1 - x0);
    const Y = (v) => top + (h - top - bottom) * (1 - (v - y0) / (y1 - y0));

    for (const v of [y0, (y0 + y1) / 2, y1]) {
      svg.append(svgEl('line', {x1: left, x2: w - right, y1: Y(v), y2: Y(v), class: 'grid'}));
      svg.append(svgEl('text', {x: left - 4, y: Y(v) + 3, 'text-anchor': 'end', class: 'axis'},
                       (chart.axis || chart.fmt)(v)));
    }
    svg.append(svgEl('text', {x: left, y: h - 3, class: 'axis'},
                     `−${Math.round(x1 - x0)} s`));
    svg.append(svgEl('text', {x: w - right, y: h - 3, 'text-anchor': 'end', class: 'axis'},
                     'now'));
    for (const e of model.drift) {
      if (e.time < x0) continue;
      const line = svgEl('line', {x1: X(e.time), x2: X(e.time), y1: top, y2: h - bottom,
                                  class: 'drift'});
      line.append(svgEl('title', {}, `drift detected at ${fmtTime(e.time)} (${e.count})`));
      svg.append(line);
    }
    for (const l of lines) {
      let d = '';
      let prev = -Infinity;
      for (const [t, v] of l.points) {
        if (t < x0) continue;
        d += `${t - prev > GAP_SECONDS ? 'M' : 'L'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`;
        prev = t;
      }
      // A lone point still shows: a round cap on a zero-length segment.
      svg.append(svgEl('path', {d: d.replace(/^M([^LM]+)$/, 'M$1L$1'), class: `l${l.i}`,
                                fill: 'none', 'stroke-width': 2, 'stroke-linecap': 'round',
                                'stroke-linejoin': 'round'}));
    }
    if (model.drift.length) {
      const item = el('span');
      item.append(el('span', {class: 'swatch sd'}), document.createTextNode('drift'));
      legend.append(item);
    }
  }

  function drawClasses(fig, model) {
    const {svg, w, h, legend} = resetFigure(fig);
    const classWindow = state.windows.class_seconds || 0;
    legend.textContent = `last ${classWindow} s`;
    if (model.classes === null) {
      setChartData(fig, 'absent', 0, null);
      message(svg, w, h, 'not reported by this server');
      return;
    }
    const recent = model.classes.reduce((n, c) => n + c.recent, 0);
    const total = model.classes.reduce((n, c) => n + c.total, 0);
    if (!model.classes.length || total === 0) {
      setChartData(fig, 'empty', 0, null);
      message(svg, w, h, 'no predictions yet');
      return;
    }
    // Bars of the recent share; with nothing recent, the shares since the start.
    const useRecent = recent > 0;
    legend.textContent = useRecent
        ? `last ${classWindow} s: ${fmtCount(recent)} predictions`
        : `none in the last ${classWindow} s; since start: ${fmtCount(total)}`;
    fig.dataset.state = 'data';
    fig.dataset.points = String(model.classes.length);
    fig.dataset.last = String(useRecent ? recent : total);
    const shown = model.classes.slice(0, 6);
    const row = Math.min(22, (h - 4) / shown.length);
    const label = 90, right = 70;
    shown.forEach((c, i) => {
      const count = useRecent ? c.recent : c.total;
      const share = count / (useRecent ? recent : total);
      const y = 2 + i * row;
      svg.append(svgEl('text', {x: label - 6, y: y + row * 0.65, 'text-anchor': 'end',
                                class: 'axis'}, c.class.slice(0, 14)));
      svg.append(svgEl('rect', {x: label, y: y + 2, height: Math.max(row - 6, 2),
                                width: Math.max((w - label - right) * share, 1), class: 'bar'}));
      svg.append(svgEl('text', {x: w - right + 4, y: y + row * 0.65, class: 'axis'},
                       `${(share * 100).toFixed(1)}% (${fmtCount(count)})`));
    });
  }

  function drawFlagged(table, model) {
    table.replaceChildren();
    table.dataset.rows = String(model.flagged.length);
    if (!state.flaggedAvailable || !model.present.has('kafka_lag_records') &&
        !model.flagged.length) {
      table.hidden = true;
      return;
    }
    table.hidden = false;
    table.append(el('caption', {}, 'Latest flagged predictions (routing rules)'));
    if (!model.flagged.length) {
      const tr = el('tr');
      tr.append(el('td', {class: 'none'},
                   'none yet (the routing rules of the model\'s Kafka path flag predictions)'));
      table.append(tr);
      return;
    }
    const head = el('tr');
    for (const name of ['time', 'id', 'predicted', 'probability', 'topic']) {
      head.append(el('th', {}, name));
    }
    table.append(head);
    for (const f of model.flagged.slice(0, 10)) {
      let predicted = '?', probability = '';
      try {
        const record = JSON.parse(f.record);
        predicted = String(record.predicted);
        const p = record.probabilities && record.probabilities[record.predicted];
        if (typeof p === 'number') probability = p.toFixed(3);
      } catch (e) {
        // Not JSON: the row still shows when, which id and where it went.
      }
      const tr = el('tr');
      tr.append(el('td', {class: 'num'}, fmtTime(f.time)), el('td', {}, f.key),
                el('td', {}, predicted), el('td', {class: 'num'}, probability),
                el('td', {}, f.topic));
      table.append(tr);
    }
  }

  // ---------------------------------------------------------------------------------------
  // The loop

  function render() {
    const main = document.getElementById('models');
    main.dataset.count = String(state.models.size);
    const empty = document.getElementById('empty');
    empty.hidden = state.models.size > 0;
    if (state.now === 0) empty.textContent = 'No data yet: waiting for the server\'s first sample.';
    else if (!state.models.size) empty.textContent = 'No models are served yet.';
    for (const name of [...state.models.keys()].sort()) {
      const model = state.models.get(name);
      renderCard(model);
      main.append(model.card);  // keeps the cards in name order
    }
    document.getElementById('clock').textContent =
        state.now ? `last sample ${fmtTime(state.now)}` : '';
  }

  function setStatus(st, text) {
    const status = document.getElementById('status');
    status.dataset.state = st;
    status.textContent = text;
  }

  async function poll() {
    try {
      const response = await fetch(`${API}?since=${state.since}`, {cache: 'no-store'});
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      merge(await response.json());
      render();
      state.updates += 1;
      document.body.dataset.updates = String(state.updates);
      setStatus('live', 'live');
    } catch (e) {
      // The server may have restarted with a new history: start over when it answers again.
      state.since = 0;
      setStatus('error', `not connected (${e.message}); retrying`);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
