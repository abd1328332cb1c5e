#!/usr/bin/env node
// Draws the agents' console world map (src/api/console/world.svg) from Natural Earth's
// 1:110m admin-0 country outlines (public domain), as shipped in TopoJSON by the npm package
// world-atlas@2.0.2 (Natural Earth 4.1.0). The package tarball is fetched once with `npm pack`,
// checked against the sha256 pinned below and cached; nothing else is downloaded, and the
// TopoJSON is decoded here (no topojson-client, no d3).
//
// Usage:
//   node scripts/world-map.mjs OUT.svg    write the map to OUT.svg (e.g. src/api/console/world.svg)
//
// Notes:
//   - Equirectangular: viewBox "0 0 360 180", x = lon + 180, y = 90 - lat, coordinates rounded to
//     0.1 degree and written as relative path commands; one <path class="land"> per country, with
//     data-id (ISO 3166-1 numeric, absent for N. Cyprus, Somaliland and Kosovo) and data-name.
//   - world-atlas stitches rings across the antimeridian (Russia, Fiji) and around the south pole
//     (Antarctica). Each ring is unwrapped to continuous longitudes, closed along the pole if it
//     winds around one, and clipped to [-180, 180] once per 360-degree copy, so no edge crosses the
//     map; pieces cut at the edge run along x = 0 or x = 360.
//   - Same input, same bytes: rerunning it on an unchanged cache rewrites an identical file.
//
// Environment:
//   CALLAHEAD_WORLD_ATLAS_CACHE  cache dir (default: ${XDG_CACHE_HOME:-$HOME/.cache}/callahead/world-atlas-2.0.2)

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PKG = 'world-atlas';
const VERSION = '2.0.2';
const TARBALL = `${PKG}-${VERSION}.tgz`;
const TARBALL_SHA256 = '032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97';
const FILE = 'countries-110m.json';

const log = (msg) => process.stderr.write(`world-map.mjs: ${msg}\n`);
const die = (msg) => {
    log(`error: ${msg}`);
    process.exit(1);
};
const sha256 = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const cacheBase = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'callahead');
const cacheDir = process.env.CALLAHEAD_WORLD_ATLAS_CACHE || path.join(cacheBase, `${PKG}-${VERSION}`);

// Returns the path of the cached countries-110m.json, fetching the package first if needed.
// The tarball is checked before use and kept, so a cached copy is rechecked on every run.
function topologyFile() {
    const tgz = path.join(cacheDir, TARBALL);
    const json = path.join(cacheDir, FILE);
    if (fs.existsSync(tgz) && sha256(tgz) === TARBALL_SHA256 && fs.existsSync(json)) return json;
    fs.mkdirSync(cacheDir, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(cacheDir, '.install.'));
    try {
        log(`downloading ${PKG}@${VERSION} from the npm registry (2.3 MB)`);
        execFileSync('npm', ['pack', '--silent', '--cache', path.join(tmp, 'npm-cache'), `${PKG}@${VERSION}`], {
            cwd: tmp,
            stdio: ['ignore', 'ignore', 'inherit'],
        });
        const got = path.join(tmp, TARBALL);
        if (!fs.existsSync(got)) die(`npm pack produced no ${TARBALL} in ${tmp}`);
        const actual = sha256(got);
        if (actual !== TARBALL_SHA256) die(`sha256 mismatch for ${TARBALL}: expected ${TARBALL_SHA256}, got ${actual}`);
        execFileSync('tar', ['-xzf', got, '-C', tmp, `package/${FILE}`], { stdio: 'inherit' });
        // Rename the JSON first: a tarball in the cache means its JSON is there too.
        fs.renameSync(path.join(tmp, 'package', FILE), json);
        fs.renameSync(got, tgz);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    return json;
}

// TopoJSON decoding (quantized, delta-encoded arcs; negative index = reversed arc ~i).
function decoder(topo) {
    const [sx, sy] = topo.transform ? topo.transform.scale : [1, 1];
    const [tx, ty] = topo.transform ? topo.transform.translate : [0, 0];
    const arcs = topo.arcs.map((arc) => {
        let x = 0;
        let y = 0;
        return arc.map(([dx, dy]) => {
            if (topo.transform) {
                x += dx;
                y += dy;
                return [x * sx + tx, y * sy + ty];
            }
            return [dx, dy];
        });
    });
    const ring = (indexes) => {
        const out = [];
        for (const i of indexes) {
            const arc = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
            // Consecutive arcs share their joining point.
            out.push(...(out.length ? arc.slice(1) : arc));
        }
        return out;
    };
    return (geometry) => {
        switch (geometry.type) {
            case 'Polygon':
                return [geometry.arcs.map(ring)];
            case 'MultiPolygon':
                return geometry.arcs.map((polygon) => polygon.map(ring));
            default:
                return [];
        }
    };
}

// Unwraps a closed lon/lat ring so consecutive longitudes never differ by more than 180 degrees.
// A ring that then ends 360 degrees from where it started winds around a pole: it is closed along
// that pole's parallel (the pole on the ring's side of the equator).
function unwrap(ring) {
    const out = [];
    let shift = 0;
    for (let i = 0; i < ring.length; i++) {
        const [lon, lat] = ring[i];
        if (i > 0) {
            const d = lon + shift - out[i - 1][0];
            if (d > 180) shift -= 360;
            else if (d < -180) shift += 360;
        }
        out.push([lon + shift, lat]);
    }
    const first = out[0];
    const last = out[out.length - 1];
    if (Math.abs(last[0] - first[0]) > 180) {
        const meanLat = out.reduce((sum, p) => sum + p[1], 0) / out.length;
        const pole = meanLat < 0 ? -90 : 90;
        out.push([last[0], pole], [first[0], pole]);
    }
    return out;
}

// Sutherland–Hodgman against one vertical line, keeping the side where inside(x) holds.
function clipX(ring, edge, inside) {
    const out = [];
    for (let i = 0; i < ring.length; i++) {
        const a = ring[i];
        const b = ring[(i + 1) % ring.length];
        const ina = inside(a[0]);
        const inb = inside(b[0]);
        if (ina) out.push(a);
        if (ina !== inb) {
            const t = (edge - a[0]) / (b[0] - a[0]);
            out.push([edge, a[1] + t * (b[1] - a[1])]);
        }
    }
    return out;
}

// Splits a ring into pieces inside [-180, 180], one per 360-degree copy it overlaps.
function cut(ring) {
    const u = unwrap(ring);
    const xs = u.map((p) => p[0]);
    const min = Math.min(...xs);
    const max = Math.max(...xs);
    if (min >= -180 && max <= 180) return [u];
    const pieces = [];
    for (let k = Math.floor((min + 180) / 360); k <= Math.ceil((max - 180) / 360); k++) {
        const shifted = u.map(([x, y]) => [x - 360 * k, y]);
        let piece = clipX(shifted, -180, (x) => x >= -180);
        piece = clipX(piece, 180, (x) => x <= 180);
        if (piece.length >= 3) pieces.push(piece);
    }
    return pieces;
}

// Projects to the viewBox in integer tenths, dropping repeated points and flat rings.
function project(ring) {
    const out = [];
    for (const [lon, lat] of ring) {
        const p = [Math.round((lon + 180) * 10), Math.round((90 - lat) * 10)];
        const prev = out[out.length - 1];
        if (!prev || prev[0] !== p[0] || prev[1] !== p[1]) out.push(p);
    }
    while (out.length > 1 && out[0][0] === out[out.length - 1][0] && out[0][1] === out[out.length - 1][1]) out.pop();
    // Drops points in the middle of a straight run (often left by rounding): the shape is unchanged.
    for (let i = 0; out.length > 3 && i < out.length; ) {
        const a = out[(i + out.length - 1) % out.length];
        const b = out[i];
        const c = out[(i + 1) % out.length];
        const cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
        const dot = (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]);
        if (cross === 0 && dot > 0) out.splice(i, 1);
        else i++;
    }
    let area2 = 0;
    for (let i = 0; i < out.length; i++) {
        const [x0, y0] = out[i];
        const [x1, y1] = out[(i + 1) % out.length];
        area2 += x0 * y1 - x1 * y0;
    }
    return out.length >= 3 && area2 !== 0 ? out : null;
}

// A number of tenths as the shortest SVG number: 12 -> "1.2", -5 -> "-.5", 30 -> "3".
function num(tenths) {
    const sign = tenths < 0 ? '-' : '';
    const a = Math.abs(tenths);
    const whole = Math.floor(a / 10);
    const frac = a % 10;
    if (frac === 0) return sign + whole;
    return sign + (whole === 0 ? '' : whole) + '.' + frac;
}

// Path data with relative commands; `h`/`v` for axis-aligned steps, implicit repeats elsewhere.
function pathData(rings) {
    let d = '';
    let cmd = '';
    let start = [0, 0];
    // Appends a number, with a space only where it would otherwise run into the previous one
    // ("-" always starts a number; "." does when the previous number already has one).
    const value = (v) => {
        if (!/[\d.]$/.test(d) || v.startsWith('-') || (v.startsWith('.') && /\.\d*$/.test(d))) d += v;
        else d += ' ' + v;
    };
    const put = (letter, ...values) => {
        if (letter !== cmd || letter === 'm') {
            d += letter;
            cmd = letter === 'm' ? 'l' : letter;
        }
        values.forEach(value);
    };
    for (const ring of rings) {
        const [x0, y0] = ring[0];
        put('m', num(x0 - start[0]), num(y0 - start[1]));
        let [x, y] = ring[0];
        for (const [nx, ny] of ring.slice(1)) {
            if (ny === y) put('h', num(nx - x));
            else if (nx === x) put('v', num(ny - y));
            else put('l', num(nx - x), num(ny - y));
            [x, y] = [nx, ny];
        }
        d += 'z';
        cmd = '';
        start = [x0, y0];
    }
    return d;
}

const escape = (s) =>
    String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);

function main() {
    const args = process.argv.slice(2);
    if (args.length !== 1 || args[0].startsWith('-')) {
        process.stderr.write('Usage: node scripts/world-map.mjs OUT.svg\n');
        process.exit(2);
    }
    const out = args[0];
    const topo = JSON.parse(fs.readFileSync(topologyFile(), 'utf8'));
    const polygons = decoder(topo);
    const lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        `<!-- World map: Natural Earth 1:110m admin-0 countries (public domain), via the npm package ${PKG}@${VERSION} (countries-110m.json).`,
        '     Equirectangular, x = lon + 180, y = 90 - lat. Generated by scripts/world-map.mjs; do not edit by hand. -->',
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 360 180">',
    ];
    let countries = 0;
    for (const g of topo.objects.countries.geometries) {
        const rings = [];
        for (const polygon of polygons(g)) {
            for (const ring of polygon) {
                for (const piece of cut(ring)) {
                    const p = project(piece);
                    if (p) rings.push(p);
                }
            }
        }
        if (!rings.length) continue;
        const id = g.id === undefined ? '' : ` data-id="${escape(g.id)}"`;
        const name = g.properties && g.properties.name ? ` data-name="${escape(g.properties.name)}"` : '';
        lines.push(`<path class="land"${id}${name} d="${pathData(rings)}"/>`);
        countries++;
    }
    lines.push('</svg>', '');
    const text = lines.join('\n');
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    const tmp = `${out}.tmp.${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, out);
    log(`wrote ${out}: ${countries} countries, ${Buffer.byteLength(text)} bytes`);
}

main();
