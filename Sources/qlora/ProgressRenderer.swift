import Foundation
import QLoRAPipeline

/// Renders pipeline events: on a terminal, a live bar with rate and ETA on stderr; otherwise (CI, logs)
/// one plain progress line every few seconds. Stage starts, skips, finishes and failures always get a line.
final class ProgressRenderer: @unchecked Sendable {
    private let interactive: Bool
    private let interval: Double
    private let lock = NSLock()
    private var lastLine = Date.distantPast
    private var barVisible = false

    init(interactive: Bool) {
        self.interactive = interactive
        interval = Double(ProcessInfo.processInfo.environment["QLORA_PROGRESS_INTERVAL"] ?? "") ?? 5
    }

    func handle(_ event: Pipeline.Event) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .backend(let selection):
            say("backend: \(selection.summary)")
        case .cleanedUp(let names):
            say("removed leftovers of an interrupted run: \(names.joined(separator: ", "))")
        case .skipped(let stage, let reason):
            say("\(pad(stage)) skipped: \(reason)")
        case .started(let stage, let reason):
            say("\(pad(stage)) running: \(reason)")
        case .progress(let p):
            progress(p)
        case .finished(let stage, let manifest):
            say("\(pad(stage)) done in \(formatDuration(manifest.durationSeconds))")
            for note in manifest.notes { say("\(pad(nil))   \(note)") }
        case .failed(let stage, let message):
            say("\(pad(stage)) FAILED: \(message)")
        }
    }

    private func pad(_ stage: StageID?) -> String {
        (stage?.rawValue ?? "").padding(toLength: 9, withPad: " ", startingAt: 0)
    }

    private func say(_ line: String) {
        clearBar()
        printSafe(line)
        fflush(nil)
    }

    private func clearBar() {
        if barVisible {
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            barVisible = false
        }
    }

    private func progress(_ p: ProgressSnapshot) {
        let numbers = describe(p)
        if interactive {
            var bar = ""
            if let f = p.fraction {
                let width = 24, filled = Int(f * Double(width))
                bar = "[" + String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled) + "] "
                    + String(format: "%3.0f%% ", f * 100)
            }
            FileHandle.standardError.write(Data("\r\u{1B}[K\(pad(p.stage)) \(terminalSafe(p.label)) \(bar)\(numbers)".utf8))
            barVisible = true
            if p.finished { clearBar() }
        } else {
            let now = Date()
            if p.completed == 0 && !p.finished {
                lastLine = now
                return
            }
            guard p.finished || now.timeIntervalSince(lastLine) >= interval else { return }
            lastLine = now
            let percent = p.fraction.map { String(format: "%.0f%% ", $0 * 100) } ?? ""
            printSafe("\(pad(p.stage)) \(p.label): \(percent)\(numbers)")
            fflush(nil)
        }
    }

    private func describe(_ p: ProgressSnapshot) -> String {
        var parts: [String] = []
        let done = amount(Double(p.completed), p.unit)
        parts.append(p.total.map { "\(done)/\(amount(Double($0), p.unit))" } ?? done)
        // Slow work (a training step takes seconds) reads better as seconds per unit.
        if p.rate > 0 && p.rate < 1 && p.unit != .bytes {
            parts.append(String(format: "%.1f s/", 1 / p.rate) + p.unit.singular)
        } else {
            parts.append("\(amount(p.rate, p.unit))/s")
        }
        if !p.finished, let eta = p.eta { parts.append("ETA \(clock(eta))") }
        if p.finished { parts.append("in \(formatDuration(p.elapsed))") }
        if !p.detail.isEmpty { parts.append(p.detail) }
        return parts.joined(separator: "  ")
    }

    private func amount(_ x: Double, _ unit: ProgressSnapshot.Unit) -> String {
        switch unit {
        case .bytes:
            if x >= 1e9 { return String(format: "%.2f GB", x / 1e9) }
            if x >= 1e6 { return String(format: "%.1f MB", x / 1e6) }
            return String(format: "%.0f kB", x / 1e3)
        case .items: return String(format: "%.0f items", x)
        case .steps: return String(format: x >= 100 || x == x.rounded() ? "%.0f steps" : "%.1f steps", x)
        case .tokens: return String(format: "%.0f tok", x)
        }
    }

    private func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s % 3600 / 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

extension ProgressSnapshot.Unit {
    var singular: String {
        switch self {
        case .bytes: return "byte"
        case .items: return "item"
        case .steps: return "step"
        case .tokens: return "token"
        }
    }
}
