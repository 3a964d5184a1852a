import Foundation
import QLoRAFormats

/// Stage 1: read the dataset files, validate and normalize every row, drop exact duplicates, split
/// train/eval by example hash.
///
/// Outputs (in `<run>/ingest/`):
/// - `train.jsonl`, `eval.jsonl`: `Example` lines in input order (see `Example` for the schema);
/// - `rejected.jsonl`: one line per rejected row: file, line, reason, detail, excerpt;
/// - `stats.json`: counts per file and per reason, duplicates, split sizes, lengths in Unicode scalars.
///
/// Streaming: memory holds the dedupe set (16 bytes per unique example) and a length histogram, never
/// the rows. The split is a pure function of each example's content hash, so it is stable when rows are
/// appended, removed or reordered.
public struct IngestStage: Stage {
    public let id = StageID.ingest
    public let formatVersion = 1

    public init() {}

    public func configuration(of spec: JobSpec) throws -> Data {
        try canonicalJSON(spec.dataset)
    }

    public func inputFiles(of spec: JobSpec) -> [URL] {
        (spec.dataset?.files ?? []).map { spec.resolve($0.path) }
    }

    public func run(_ context: StageContext) throws -> StageReport {
        guard let section = context.spec.dataset else { throw StageFailure("the spec has no `dataset` section") }
        let out = context.output
        let split: IngestWriter.Split = section.evalSize.map { .evalSize($0) } ?? .evalFraction(section.evalFraction ?? 0.1)
        let writer = try IngestWriter(directory: out, split: split, dedupe: section.dedupe)
        for file in section.files {
            try IngestReader.read(file: file, url: context.spec.resolve(file.path), into: writer, progress: context.progress)
        }
        let stats = try writer.finish()
        try AtomicFile.write(try stats.encoded(), to: out.appendingPathComponent("stats.json"))

        let rejectedFraction = stats.rows == 0 ? 0 : Double(stats.rejected) / Double(stats.rows)
        if rejectedFraction > section.maxRejectedFraction {
            // Keep the evidence where the user can read it: the stage directory itself is discarded.
            let kept = context.runDirectory.appendingPathComponent("ingest.rejected.jsonl")
            try? FileManager.default.removeItem(at: kept)
            try? FileManager.default.moveItem(at: out.appendingPathComponent("rejected.jsonl"), to: kept)
            let reasons = stats.rejectedByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            throw StageFailure("""
                rejected \(stats.rejected) of \(stats.rows) rows (\(percent(rejectedFraction))), more than \
                max_rejected_fraction \(section.maxRejectedFraction) [\(reasons.joined(separator: ", "))]; \
                first: \(writer.firstRejections.joined(separator: "; ")); all rejections: \(kept.path)
                """)
        }
        // A previous failed run's evidence is obsolete now.
        try? FileManager.default.removeItem(at: context.runDirectory.appendingPathComponent("ingest.rejected.jsonl"))
        if stats.unique == 0 { throw StageFailure("no usable examples in \(section.files.map(\.path).joined(separator: ", "))") }

        var notes = ["\(stats.rows) rows: \(stats.accepted) accepted, \(stats.rejected) rejected, \(stats.duplicates) duplicates removed; train \(stats.train), eval \(stats.eval)"]
        if stats.rejected > 0 {
            notes.append("rejected rows (see ingest/rejected.jsonl): " + writer.firstRejections.joined(separator: "; "))
        }
        if stats.eval == 0 { notes.append("warning: the eval split is empty") }
        return StageReport(metrics: [
            "rows": Double(stats.rows), "accepted": Double(stats.accepted), "rejected": Double(stats.rejected),
            "duplicates": Double(stats.duplicates), "train": Double(stats.train), "eval": Double(stats.eval),
            "mb_per_s": stats.megabytesPerSecond,
        ], notes: notes)
    }
}

func percent(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }
