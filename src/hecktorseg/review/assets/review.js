/* hecktorseg review page: the cohort table and the per-case PET/CT viewer.
 *
 * Plain JavaScript, no library, nothing loaded from the network. The cohort comes inline
 * (<script id="cohort">); a case's volumes come from cases/case-NNNN.js, added as a <script>
 * tag when the case is opened (file:// pages may not fetch()), which calls hsReview.caseLoaded.
 * Volumes are (z, y, x) uint8 arrays, deflated and base64-encoded: CT as a HU code (ctCode),
 * PET as SUV / petScale, labels as prediction (bits 0-1) + ground truth (bits 2-3).
 */
(function () {
  'use strict';

  var cohort = JSON.parse(document.getElementById('cohort').textContent);
  var PLANES = ['axial', 'coronal', 'sagittal'];
  var CACHE_SIZE = 6;
  var byId = function (id) { return document.getElementById(id); };

  var state = {
    sortKey: null, sortDir: 1, current: null, active: 'axial',
    cases: {}, order: [], pending: {}, volume: null, slices: {axial: 0, coronal: 0, sagittal: 0}
  };
  var labelColour = {};
  cohort.labels.forEach(function (l) { labelColour[l.value] = hexRgb(l.colour); });

  function hexRgb(hex) {
    var n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  // ---------------------------------------------------------------- the cohort table
  function formatCell(col, value) {
    if (value === null || value === undefined) { return col.kind === 'number' ? '–' : ''; }
    if (col.kind === 'number') { return Number(value).toFixed(col.digits); }
    return String(value);
  }

  function buildHead() {
    var tr = document.createElement('tr');
    cohort.columns.forEach(function (col) {
      var th = document.createElement('th');
      th.textContent = col.title;
      th.dataset.key = col.key;
      th.addEventListener('click', function () { sortBy(col.key); });
      tr.appendChild(th);
    });
    document.querySelector('#cohort-table thead').appendChild(tr);
  }

  function buildRows() {
    var body = document.querySelector('#cohort-table tbody');
    cohort.rows.forEach(function (row, index) {
      var tr = document.createElement('tr');
      tr.dataset.index = String(index);
      tr.dataset.patient = row.patient;
      if (row.error) { tr.classList.add('error'); }
      cohort.columns.forEach(function (col) {
        var td = document.createElement('td');
        td.dataset.key = col.key;
        if (col.kind === 'flags') {
          (row.flags || []).forEach(function (name) {
            var span = document.createElement('span');
            span.className = 'flag' + (name === 'error' ? ' error' : '');
            span.textContent = name;
            span.title = flagDescription(name);
            td.appendChild(span);
          });
        } else {
          td.textContent = formatCell(col, row[col.key]);
          if (col.kind === 'number') { td.classList.add('number'); }
          if (col.key === 'error') { td.classList.add('errortext'); td.title = td.textContent; }
        }
        tr.appendChild(td);
      });
      tr.addEventListener('click', function () { openCase(index); });
      row._text = [row.patient, row.centre, (row.flags || []).join(' '), row.error || ''].join(' ').toLowerCase();
      row._tr = tr;
      body.appendChild(tr);
    });
    state.order = cohort.rows.map(function (_, i) { return i; });
  }

  function flagDescription(name) {
    var found = cohort.flags.filter(function (f) { return f.name === name; });
    return found.length ? found[0].description : name;
  }

  function sortValue(row, key) {
    var v = row[key];
    if (key === 'flags') { return (v || []).length; }
    return v === undefined ? null : v;
  }

  function sortBy(key) {
    state.sortDir = state.sortKey === key ? -state.sortDir : 1;
    state.sortKey = key;
    var dir = state.sortDir;
    var idx = cohort.rows.map(function (_, i) { return i; });
    idx.sort(function (a, b) {
      var va = sortValue(cohort.rows[a], key), vb = sortValue(cohort.rows[b], key);
      if (va === null && vb === null) { return a - b; }
      if (va === null) { return 1; }  // missing values last, whatever the direction
      if (vb === null) { return -1; }
      var c = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
      return c === 0 ? a - b : c * dir;
    });
    var body = document.querySelector('#cohort-table tbody');
    idx.forEach(function (i) { body.appendChild(cohort.rows[i]._tr); });
    state.order = idx;
    document.querySelectorAll('#cohort-table th').forEach(function (th) {
      th.removeAttribute('aria-sort');
      if (th.dataset.key === key) { th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending'); }
    });
  }

  function applyFilter() {
    var text = byId('filter').value.trim().toLowerCase();
    var flaggedOnly = byId('flagged-only').checked;
    var shown = 0;
    cohort.rows.forEach(function (row) {
      var visible = (!text || row._text.indexOf(text) >= 0) && (!flaggedOnly || (row.flags || []).length > 0);
      row._tr.hidden = !visible;
      if (visible) { shown += 1; }
    });
    byId('count').textContent = shown + ' of ' + cohort.rows.length + ' cases';
  }

  function buildLegend() {
    var legend = byId('legend');
    cohort.labels.forEach(function (l) {
      [['solid', 'ground truth'], ['dashed', 'prediction']].forEach(function (style) {
        var sw = document.createElement('span');
        sw.className = 'swatch ' + style[0];
        sw.style.borderTopColor = l.colour;
        legend.appendChild(sw);
        legend.appendChild(document.createTextNode(l.name + ' ' + style[1]));
      });
    });
    var dl = byId('flag-legend');
    cohort.flags.forEach(function (f) {
      var dt = document.createElement('dt'), dd = document.createElement('dd');
      dt.textContent = f.name;
      dd.textContent = f.description;
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
  }

  // ---------------------------------------------------------------- loading a case
  function decode(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  }

  function openCase(index) {
    var row = cohort.rows[index];
    state.current = index;
    cohort.rows.forEach(function (r) { r._tr.classList.toggle('current', r === row); });
    byId('viewer').hidden = false;
    byId('case-title').textContent = row.patient + (row.centre ? ' · ' + row.centre : '');
    byId('case-status').textContent = '';
    if (!row.file) {
      state.volume = null;
      clearViews();
      byId('case-status').textContent = row.error || 'no viewer data';
      return;
    }
    if (state.cases[row.patient]) { show(state.cases[row.patient]); return; }
    byId('case-status').textContent = 'loading…';
    if (state.pending[row.patient]) { return; }
    state.pending[row.patient] = true;
    var tag = document.createElement('script');
    tag.src = row.file;
    tag.onerror = function () {
      delete state.pending[row.patient];
      if (state.current === index) { byId('case-status').textContent = 'cannot load ' + row.file; }
    };
    document.body.appendChild(tag);
  }

  function caseLoaded(payload) {
    if (typeof DecompressionStream === 'undefined') {
      byId('case-status').textContent = 'this browser cannot decompress the data: use a recent Chrome, Edge, Firefox or Safari';
      return;
    }
    Promise.all([decode(payload.ct), decode(payload.pet), decode(payload.labels)]).then(function (arrays) {
      var vol = {
        id: payload.id, shape: payload.shape, spacing: payload.spacing, origin: payload.origin,
        petScale: payload.petScale, hasGt: payload.hasGt, lesions: payload.lesions,
        ct: arrays[0], pet: arrays[1], labels: arrays[2]
      };
      delete state.pending[payload.id];
      var keys = Object.keys(state.cases);
      if (keys.length >= CACHE_SIZE) { delete state.cases[keys[0]]; }
      state.cases[payload.id] = vol;
      var current = cohort.rows[state.current];
      if (current && current.patient === payload.id) { show(vol); }
    }).catch(function (err) {
      byId('case-status').textContent = 'cannot decode ' + payload.id + ': ' + err;
    });
  }

  // ---------------------------------------------------------------- drawing
  function show(vol) {
    state.volume = vol;
    byId('case-status').textContent = '';
    var dims = planeDims(vol);
    var mm = Math.max.apply(null, PLANES.map(function (p) { return Math.max(dims[p].wmm, dims[p].hmm); }));
    // the three planes side by side, on one millimetre scale, within the window's width and height
    var px = Math.max(200, Math.min(440, (window.innerWidth - 80) / 3, window.innerHeight * 0.5));
    var scale = px / mm;
    PLANES.forEach(function (p) {
      var c = byId('view-' + p), d = dims[p];
      c.width = d.w; c.height = d.h;
      c.style.width = Math.round(d.wmm * scale) + 'px';
      c.style.height = Math.round(d.hmm * scale) + 'px';
      var slider = byId('slice-' + p);
      slider.max = String(d.n - 1);
    });
    var first = vol.lesions.filter(function (l) { return l.source === 'prediction'; })[0] || vol.lesions[0];
    if (first) { jumpTo(first.zyx); } else {
      jumpTo([vol.shape[0] >> 1, vol.shape[1] >> 1, vol.shape[2] >> 1]);
    }
    buildLesionButtons(vol);
  }

  function planeDims(vol) {
    var nz = vol.shape[0], ny = vol.shape[1], nx = vol.shape[2];
    var sz = vol.spacing[0], sy = vol.spacing[1], sx = vol.spacing[2];
    return {
      axial: {w: nx, h: ny, n: nz, wmm: nx * sx, hmm: ny * sy},
      coronal: {w: nx, h: nz, n: ny, wmm: nx * sx, hmm: nz * sz},
      sagittal: {w: ny, h: nz, n: nx, wmm: ny * sy, hmm: nz * sz}
    };
  }

  function buildLesionButtons(vol) {
    var box = byId('lesions');
    box.textContent = '';
    if (!vol.lesions.length) { box.textContent = 'no lesion predicted or outlined'; return; }
    box.appendChild(document.createTextNode('jump to: '));
    vol.lesions.forEach(function (l, k) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'lesion';
      b.dataset.index = String(k);
      b.textContent = l.name + ' ' + (l.source === 'prediction' ? 'pred' : 'GT') + ' ' + l.ml.toFixed(2) + ' ml';
      b.style.borderColor = cohort.labels.filter(function (x) { return x.value === l.label; })[0].colour;
      b.addEventListener('click', function () { jumpTo(l.zyx); });
      box.appendChild(b);
    });
  }

  function jumpTo(zyx) {
    state.slices.axial = zyx[0];
    state.slices.coronal = zyx[1];
    state.slices.sagittal = zyx[2];
    drawAll();
  }

  function setSlice(plane, value) {
    var vol = state.volume;
    if (!vol) { return; }
    var n = planeDims(vol)[plane].n;
    state.slices[plane] = Math.max(0, Math.min(n - 1, value));
    draw(plane);
  }

  function luts() {
    var win = byId('window').value.split(',').map(Number);
    var lo = win[1] - win[0] / 2, hi = win[1] + win[0] / 2;
    var code = cohort.ctCode.code, hu = cohort.ctCode.hu;
    var grey = new Uint8ClampedArray(256);
    for (var c = 0; c < 256; c++) {
      var k = 0;
      while (k < code.length - 2 && c > code[k + 1]) { k++; }
      var h = hu[k] + (hu[k + 1] - hu[k]) * (c - code[k]) / (code[k + 1] - code[k]);
      grey[c] = Math.round(255 * Math.min(1, Math.max(0, (h - lo) / (hi - lo))));
    }
    var vol = state.volume;
    var smin = Number(byId('suv-min').value) || 0, smax = Number(byId('suv-max').value) || 1;
    if (smax <= smin) { smax = smin + 0.1; }
    var opacity = Number(byId('pet-opacity').value);
    var pr = new Float32Array(256), pg = new Float32Array(256), pb = new Float32Array(256), pa = new Float32Array(256);
    for (var p = 0; p < 256; p++) {
      var t = Math.min(1, Math.max(0, (p * vol.petScale - smin) / (smax - smin)));
      pr[p] = 255 * Math.min(1, 3 * t);  // "hot", as in the PNGs of hecktorseg visualize
      pg[p] = 255 * Math.min(1, Math.max(0, 3 * t - 1));
      pb[p] = 255 * Math.min(1, Math.max(0, 3 * t - 2));
      pa[p] = opacity * Math.min(1, 2 * t);
    }
    return {grey: grey, pr: pr, pg: pg, pb: pb, pa: pa};
  }

  // voxel offset of pixel (row, col) of a plane at slice s
  function voxelIndex(plane, vol, s) {
    var nz = vol.shape[0], ny = vol.shape[1], nx = vol.shape[2];
    if (plane === 'axial') { return function (r, c) { return (s * ny + r) * nx + c; }; }
    if (plane === 'coronal') { return function (r, c) { return ((nz - 1 - r) * ny + s) * nx + c; }; }
    return function (r, c) { return ((nz - 1 - r) * ny + c) * nx + s; };
  }

  function draw(plane, tables) {
    var vol = state.volume;
    if (!vol) { return; }
    var t = tables || luts();
    var d = planeDims(vol)[plane], s = state.slices[plane];
    var canvas = byId('view-' + plane), ctx = canvas.getContext('2d');
    var img = ctx.createImageData(d.w, d.h), px = img.data;
    var at = voxelIndex(plane, vol, s);
    var w = d.w, h = d.h, lab = new Uint8Array(w * h);
    for (var r = 0; r < h; r++) {
      for (var c = 0; c < w; c++) {
        var v = at(r, c), g = t.grey[vol.ct[v]], q = vol.pet[v], a = t.pa[q], o = 4 * (r * w + c);
        px[o] = g + a * (t.pr[q] - g);
        px[o + 1] = g + a * (t.pg[q] - g);
        px[o + 2] = g + a * (t.pb[q] - g);
        px[o + 3] = 255;
        lab[r * w + c] = vol.labels[v];
      }
    }
    var alpha = Number(byId('outline-opacity').value);
    if (byId('show-gt').checked && vol.hasGt) { outline(px, lab, w, h, 2, false, alpha); }
    if (byId('show-pred').checked) { outline(px, lab, w, h, 0, true, alpha); }
    ctx.putImageData(img, 0, 0);
    canvas.classList.toggle('smooth', byId('smooth').checked);
    byId('slice-' + plane).value = String(s);
    byId('label-' + plane).textContent = plane + ' ' + (s + 1) + '/' + d.n;
  }

  // Colour the pixels of each label's region that touch another value (its inner boundary).
  function outline(px, lab, w, h, shift, dashed, alpha) {
    for (var r = 0; r < h; r++) {
      for (var c = 0; c < w; c++) {
        var v = (lab[r * w + c] >> shift) & 3;
        if (!v || !labelColour[v]) { continue; }
        var edge = r === 0 || c === 0 || r === h - 1 || c === w - 1 ||
          ((lab[(r - 1) * w + c] >> shift) & 3) !== v || ((lab[(r + 1) * w + c] >> shift) & 3) !== v ||
          ((lab[r * w + c - 1] >> shift) & 3) !== v || ((lab[r * w + c + 1] >> shift) & 3) !== v;
        if (!edge || (dashed && ((r + c) & 2))) { continue; }
        var col = labelColour[v], o = 4 * (r * w + c);
        px[o] += alpha * (col[0] - px[o]);
        px[o + 1] += alpha * (col[1] - px[o + 1]);
        px[o + 2] += alpha * (col[2] - px[o + 2]);
      }
    }
  }

  function drawAll() {
    var t = luts();
    PLANES.forEach(function (p) { draw(p, t); });
  }

  function clearViews() {
    PLANES.forEach(function (p) {
      var c = byId('view-' + p);
      c.getContext('2d').clearRect(0, 0, c.width, c.height);
      byId('label-' + p).textContent = '';
    });
    byId('lesions').textContent = '';
  }

  function step(delta) {
    var visible = state.order.filter(function (i) { return !cohort.rows[i]._tr.hidden; });
    if (!visible.length) { return; }
    var k = visible.indexOf(state.current);
    var next = visible[(k + delta + visible.length) % visible.length];
    openCase(next);
    cohort.rows[next]._tr.scrollIntoView({block: 'nearest'});
  }

  function setActive(plane) {
    state.active = plane;
    PLANES.forEach(function (p) { byId('view-' + p).parentNode.classList.toggle('active', p === plane); });
  }

  // ---------------------------------------------------------------- wiring
  function wire() {
    byId('filter').addEventListener('input', applyFilter);
    byId('flagged-only').addEventListener('change', applyFilter);
    ['window', 'suv-min', 'suv-max', 'pet-opacity', 'outline-opacity', 'show-pred', 'show-gt', 'smooth']
      .forEach(function (id) { byId(id).addEventListener('input', drawAll); byId(id).addEventListener('change', drawAll); });
    byId('prev-case').addEventListener('click', function () { step(-1); });
    byId('next-case').addEventListener('click', function () { step(1); });
    PLANES.forEach(function (p) {
      byId('slice-' + p).addEventListener('input', function (e) { setActive(p); setSlice(p, Number(e.target.value)); });
      var canvas = byId('view-' + p);
      canvas.addEventListener('mouseenter', function () { setActive(p); });
      canvas.addEventListener('wheel', function (e) {
        e.preventDefault();
        setActive(p);
        setSlice(p, state.slices[p] + (e.deltaY > 0 ? -1 : 1));
      }, {passive: false});
    });
    document.addEventListener('keydown', function (e) {
      var tag = e.target && e.target.tagName;
      if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') { return; }
      if (e.key === 'ArrowUp' || e.key === 'ArrowRight') { setSlice(state.active, state.slices[state.active] + 1); }
      else if (e.key === 'ArrowDown' || e.key === 'ArrowLeft') { setSlice(state.active, state.slices[state.active] - 1); }
      else if (e.key === 'n') { step(1); }
      else if (e.key === 'p') { step(-1); }
      else { return; }
      e.preventDefault();
    });
  }

  window.hsReview = {
    caseLoaded: caseLoaded, openCase: openCase, jumpTo: jumpTo, setSlice: setSlice, sortBy: sortBy,
    state: state, cohort: cohort
  };

  buildHead();
  buildRows();
  buildLegend();
  wire();
  setActive('axial');
  applyFilter();
  document.body.dataset.ready = 'true';
}());
