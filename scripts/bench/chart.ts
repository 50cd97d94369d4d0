/** A small SVG line chart (measured drain time and the latency bound against concurrency), no dependencies. */
export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: { x: number; y: number }[];
}

export function lineChartSvg(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 640;
  const H = 400;
  const m = { left: 70, right: 20, top: 40, bottom: 60 };
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const yMax = Math.max(...series.flatMap((s) => s.points.map((p) => p.y))) * 1.1 || 1;
  // Concurrency doubles at each step: a log2 x axis spaces the points evenly.
  const lx = (x: number) => Math.log2(x);
  const x0 = lx(xs[0] ?? 1);
  const x1 = lx(xs[xs.length - 1] ?? 2);
  const px = (x: number) => m.left + ((lx(x) - x0) / (x1 - x0 || 1)) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - (y / yMax) * (H - m.top - m.bottom);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  // axes and grid
  out.push(`<line x1="${m.left}" y1="${H - m.bottom}" x2="${W - m.right}" y2="${H - m.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${H - m.bottom}" stroke="#333"/>`);
  for (const x of xs) {
    out.push(`<text x="${px(x)}" y="${H - m.bottom + 18}" text-anchor="middle">${x}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const y = (yMax / 5) * i;
    out.push(`<line x1="${m.left}" y1="${py(y)}" x2="${W - m.right}" y2="${py(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${m.left - 8}" y="${py(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  out.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 18}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, k) => {
    const d = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const p of s.points) out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = m.top + 4 + k * 18;
    out.push(`<line x1="${W - m.right - 190}" y1="${ly}" x2="${W - m.right - 165}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${W - m.right - 160}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
