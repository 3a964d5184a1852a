/// Container format of a dataset file, from its name: `.jsonl`/`.ndjson`, `.json` (one array), `.csv`,
/// each optionally `.gz`-compressed.
public enum RowFileKind: String, Sendable {
    case jsonl, json, csv

    public init?(path: String) {
        var name = path.lowercased()
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if name.hasSuffix(".jsonl") || name.hasSuffix(".ndjson") { self = .jsonl }
        else if name.hasSuffix(".json") { self = .json }
        else if name.hasSuffix(".csv") { self = .csv }
        else { return nil }
    }
}
