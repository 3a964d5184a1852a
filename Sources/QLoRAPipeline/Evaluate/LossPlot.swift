import Foundation

/// A hand-written SVG line chart of the loss: lines over optimizer steps (train loss) and horizontal
/// reference levels (eval loss of the base and of the adapter), with axes, "nice" ticks, labels and a legend.
/// Pure string building, no dependencies; the output is standalone SVG 1.1.
public struct LossPlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var color: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, color: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.color = color
            self.points = points
        }
    }

    public struct Level: Sendable {
        public var name: String
        public var color: String
        public var value: Double
        public init(name: String, color: String, value: Double) {
            self.name = name
            self.color = color
            self.value = value
        }
    }

    public var title: String
    public var xLabel = "optimizer step"
    public var yLabel = "loss (mean token cross-entropy)"
    public var series: [Series]
    public var levels: [Level]
    public var width = 760.0, height = 440.0

    public init(title: String, series: [Series], levels: [Level]) {
        self.title = title
        self.series = series
        self.levels = levels
    }

    /// Tick values inside `lo...hi` at the smallest 1, 2 or 5 × 10^k spacing that makes at most `count` intervals.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(max(1, count))
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var out: [Double] = []
        var v = (lo / step).rounded(.up) * step
        while v <= hi + step * 1e-9 {
            out.append(abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return out
    }

    static func label(_ v: Double, step: Double) -> String {
        let decimals = step >= 1 ? 0 : min(6, Int((-log10(step)).rounded(.up)))
        return String(format: "%.\(decimals)f", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static func f(_ v: Double) -> String { String(format: "%.2f", v) }

    public var svg: String {
        let left = 70.0, right = 24.0, top = 44.0, bottom = 58.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
        let ys = (series.flatMap { $0.points.map(\.y) } + levels.map(\.value)).filter(\.isFinite)
        var xLo = xs.min() ?? 0, xHi = xs.max() ?? 1
        if xHi <= xLo { xLo -= 1; xHi += 1 }
        xLo = min(xLo, 0)
        var yLo = ys.min() ?? 0, yHi = ys.max() ?? 1
        if yHi <= yLo { yLo -= 0.5; yHi += 0.5 }
        let pad = (yHi - yLo) * 0.08
        yLo -= pad
        yHi += pad
        // Widen both ranges to whole tick steps, so the axes start and end on labelled round numbers.
        func snapped(_ lo: inout Double, _ hi: inout Double) -> [Double] {
            let first = Self.ticks(lo, hi)
            guard first.count > 1 else { return first }
            let step = first[1] - first[0]
            lo = (lo / step).rounded(.down) * step
            hi = (hi / step).rounded(.up) * step
            return Self.ticks(lo, hi)
        }
        let xTicks = snapped(&xLo, &xHi), yTicks = snapped(&yLo, &yHi)
        func px(_ x: Double) -> Double { left + (x - xLo) / (xHi - xLo) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - yLo) / (yHi - yLo)) * plotH }
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1, yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        let font = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""

        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))">
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#ffffff"/>
        <text x="\(Self.f(width / 2))" y="26" text-anchor="middle" font-size="16" font-weight="bold" \(font) fill="#222222">\(Self.escape(title))</text>

        """
        // Grid and ticks.
        s += "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n"
        for t in yTicks { s += "<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(py(t)))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(py(t)))\"/>\n" }
        for t in xTicks where t >= xLo && t <= xHi {
            s += "<line x1=\"\(Self.f(px(t)))\" y1=\"\(Self.f(top))\" x2=\"\(Self.f(px(t)))\" y2=\"\(Self.f(top + plotH))\"/>\n"
        }
        s += "</g>\n<g \(font) font-size=\"12\" fill=\"#444444\">\n"
        for t in yTicks {
            s += "<text x=\"\(Self.f(left - 8))\" y=\"\(Self.f(py(t) + 4))\" text-anchor=\"end\">\(Self.label(t, step: yStep))</text>\n"
        }
        for t in xTicks where t >= xLo && t <= xHi {
            s += "<text x=\"\(Self.f(px(t)))\" y=\"\(Self.f(top + plotH + 18))\" text-anchor=\"middle\">\(Self.label(t, step: xStep))</text>\n"
        }
        s += "</g>\n"
        // Axes and their labels.
        s += "<g stroke=\"#333333\" stroke-width=\"1.2\">\n"
        s += "<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(top + plotH))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(top + plotH))\"/>\n"
        s += "<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(top))\" x2=\"\(Self.f(left))\" y2=\"\(Self.f(top + plotH))\"/>\n"
        for t in yTicks { s += "<line x1=\"\(Self.f(left - 4))\" y1=\"\(Self.f(py(t)))\" x2=\"\(Self.f(left))\" y2=\"\(Self.f(py(t)))\"/>\n" }
        for t in xTicks where t >= xLo && t <= xHi {
            s += "<line x1=\"\(Self.f(px(t)))\" y1=\"\(Self.f(top + plotH))\" x2=\"\(Self.f(px(t)))\" y2=\"\(Self.f(top + plotH + 4))\"/>\n"
        }
        s += "</g>\n"
        s += "<text x=\"\(Self.f(left + plotW / 2))\" y=\"\(Self.f(height - 14))\" text-anchor=\"middle\" font-size=\"13\" \(font) fill=\"#222222\">\(Self.escape(xLabel))</text>\n"
        s += "<text x=\"18\" y=\"\(Self.f(top + plotH / 2))\" text-anchor=\"middle\" font-size=\"13\" \(font) fill=\"#222222\" transform=\"rotate(-90 18 \(Self.f(top + plotH / 2)))\">\(Self.escape(yLabel))</text>\n"
        // Data, clipped to the plot area.
        s += "<defs><clipPath id=\"plot\"><rect x=\"\(Self.f(left))\" y=\"\(Self.f(top))\" width=\"\(Self.f(plotW))\" height=\"\(Self.f(plotH))\"/></clipPath></defs>\n"
        s += "<g clip-path=\"url(#plot)\" fill=\"none\">\n"
        for level in levels where level.value.isFinite {
            s += "<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(py(level.value)))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(py(level.value)))\" stroke=\"\(level.color)\" stroke-width=\"2\" stroke-dasharray=\"7 5\"/>\n"
        }
        for line in series {
            let pts = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            guard !pts.isEmpty else { continue }
            if pts.count == 1 {
                s += "<circle cx=\"\(Self.f(px(pts[0].x)))\" cy=\"\(Self.f(py(pts[0].y)))\" r=\"3\" fill=\"\(line.color)\"/>\n"
            } else {
                let path = pts.map { "\(Self.f(px($0.x))),\(Self.f(py($0.y)))" }.joined(separator: " ")
                s += "<polyline points=\"\(path)\" stroke=\"\(line.color)\" stroke-width=\"1.6\" stroke-linejoin=\"round\"/>\n"
            }
        }
        s += "</g>\n"
        // Legend, top right inside the plot.
        let entries: [(name: String, color: String, dashed: Bool)] = series.map { ($0.name, $0.color, false) }
            + levels.filter(\.value.isFinite).map { ($0.name, $0.color, true) }
        if !entries.isEmpty {
            let rowH = 18.0
            let boxW = 28 + 7.2 * Double(entries.map(\.name.count).max() ?? 0) + 16
            let boxH = rowH * Double(entries.count) + 10
            // The corner whose box covers the fewest data points and level lines (top right on a tie).
            let corners = [(left + plotW - boxW - 8, top + 8), (left + 8, top + 8),
                           (left + plotW - boxW - 8, top + plotH - boxH - 8), (left + 8, top + plotH - boxH - 8)]
            func covered(_ c: (Double, Double)) -> Int {
                let xr = c.0...(c.0 + boxW), yr = c.1...(c.1 + boxH)
                var n = 0
                for line in series {
                    for p in line.points where p.x.isFinite && p.y.isFinite && xr.contains(px(p.x)) && yr.contains(py(p.y)) { n += 1 }
                }
                for level in levels where level.value.isFinite && yr.contains(py(level.value)) { n += 1000 }
                return n
            }
            let (bx, by) = corners.min { covered($0) < covered($1) }!
            s += "<g \(font) font-size=\"12\">\n"
            s += "<rect x=\"\(Self.f(bx))\" y=\"\(Self.f(by))\" width=\"\(Self.f(boxW))\" height=\"\(Self.f(boxH))\" fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#bbbbbb\"/>\n"
            for (i, e) in entries.enumerated() {
                let y = by + 5 + rowH * (Double(i) + 0.5)
                let dash = e.dashed ? " stroke-dasharray=\"7 5\"" : ""
                s += "<line x1=\"\(Self.f(bx + 8))\" y1=\"\(Self.f(y))\" x2=\"\(Self.f(bx + 30))\" y2=\"\(Self.f(y))\" stroke=\"\(e.color)\" stroke-width=\"2\"\(dash)/>\n"
                s += "<text x=\"\(Self.f(bx + 36))\" y=\"\(Self.f(y + 4))\" fill=\"#222222\">\(Self.escape(e.name))</text>\n"
            }
            s += "</g>\n"
        }
        s += "</svg>\n"
        return s
    }
}
