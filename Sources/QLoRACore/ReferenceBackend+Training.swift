import Foundation

/// Scalar definitions of the training ops (see the `Backend` requirements for shapes). Sums that the
/// definition reduces over run in Double where that is free, so the reference is the more accurate side
/// of every conformance comparison.
extension ReferenceBackend {
    public func rmsNormBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                                rows: Int, dim: Int, eps: Float, accumulate: Bool) {
        for r in 0..<rows {
            let xr = x + r * dim, gr = dy + r * dim, out = dx + r * dim
            var ss = 0.0
            for i in 0..<dim { ss += Double(xr[i]) * Double(xr[i]) }
            let rstd = 1 / (ss / Double(dim) + Double(eps)).squareRoot()
            // mean(dn ⊙ n) with dn = dy ⊙ w, n = x · rstd
            var dot = 0.0
            for i in 0..<dim { dot += Double(gr[i]) * Double(weight[i]) * Double(xr[i]) * rstd }
            dot /= Double(dim)
            for i in 0..<dim {
                let n = Double(xr[i]) * rstd
                let g = Float(rstd * (Double(gr[i]) * Double(weight[i]) - n * dot))
                out[i] = accumulate ? out[i] + g : g
            }
            if let dWeight {
                for i in 0..<dim { dWeight[i] += Float(Double(gr[i]) * Double(xr[i]) * rstd) }
            }
        }
    }

    public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int,
                             cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = headDim / 2
        for t in 0..<rows {
            for h in 0..<heads {
                let base = (t * heads + h) * headDim
                for i in 0..<half {
                    let c = cos[t * half + i], s = sin[t * half + i]
                    let a = dx[base + i], b = dx[base + i + half]
                    dx[base + i] = a * c + b * s
                    dx[base + i + half] = b * c - a * s
                }
            }
        }
    }

    public func attentionTraining(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                  out: UnsafeMutablePointer<Float>, logsumexp: UnsafeMutablePointer<Float>?,
                                  documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int,
                                  scale: Float) {
        let group = heads / kvHeads
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let starts = documentStarts(documents, rows: rows)
        split(heads) { headRange in
            var scores = [Double](repeating: 0, count: rows)
            for t in 0..<rows {
                for h in headRange {
                    let kvh = h / group
                    var maxScore = -Double.infinity
                    for s in starts[t]...t {
                        var dot = 0.0
                        for d in 0..<headDim { dot += Double(q[t * qStride + h * headDim + d]) * Double(k[s * kvStride + kvh * headDim + d]) }
                        scores[s] = dot * Double(scale)
                        maxScore = max(maxScore, scores[s])
                    }
                    var sum = 0.0
                    for s in starts[t]...t {
                        scores[s] = Foundation.exp(scores[s] - maxScore)
                        sum += scores[s]
                    }
                    for d in 0..<headDim {
                        var acc = 0.0
                        for s in starts[t]...t { acc += scores[s] * Double(v[s * kvStride + kvh * headDim + d]) }
                        out[t * qStride + h * headDim + d] = Float(acc / sum)
                    }
                    logsumexp?[t * heads + h] = Float(maxScore + Foundation.log(sum))
                }
            }
        }
    }

    public func attentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                  v: UnsafePointer<Float>, out: UnsafePointer<Float>, logsumexp: UnsafePointer<Float>,
                                  dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                  documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int,
                                  scale: Float) {
        let group = heads / kvHeads
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let starts = documentStarts(documents, rows: rows)
        dq.update(repeating: 0, count: rows * qStride)
        dk.update(repeating: 0, count: rows * kvStride)
        dv.update(repeating: 0, count: rows * kvStride)
        // A kv head's gradients sum over its query heads in increasing order: threads take whole kv-head groups.
        split(kvHeads) { kvRange in
            var p = [Double](repeating: 0, count: rows), dp = p
            for h in (kvRange.lowerBound * group)..<(kvRange.upperBound * group) {
                let kvh = h / group
                for t in 0..<rows {
                    let qt = q + t * qStride + h * headDim, gt = dOut + t * qStride + h * headDim
                    let ot = out + t * qStride + h * headDim
                    var delta = 0.0
                    for d in 0..<headDim { delta += Double(gt[d]) * Double(ot[d]) }
                    let lse = Double(logsumexp[t * heads + h])
                    for s in starts[t]...t {
                        let ks = k + s * kvStride + kvh * headDim, vs = v + s * kvStride + kvh * headDim
                        var dot = 0.0, dov = 0.0
                        for d in 0..<headDim {
                            dot += Double(qt[d]) * Double(ks[d])
                            dov += Double(gt[d]) * Double(vs[d])
                        }
                        p[s] = Foundation.exp(dot * Double(scale) - lse)
                        dp[s] = dov
                    }
                    for s in starts[t]...t {
                        let ds = p[s] * (dp[s] - delta) * Double(scale)
                        let ks = k + s * kvStride + kvh * headDim
                        for d in 0..<headDim {
                            dq[t * qStride + h * headDim + d] += Float(ds * Double(ks[d]))
                            dk[s * kvStride + kvh * headDim + d] += Float(ds * Double(qt[d]))
                            dv[s * kvStride + kvh * headDim + d] += Float(p[s] * Double(gt[d]))
                        }
                    }
                }
            }
        }
    }

    public func swigluBackward(_ dOut: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                               dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = Double(gate[i]), u = Double(up[i]), dy = Double(dOut[i])
            let sigma = 1 / (1 + Foundation.exp(-g))
            dGate[i] = Float(dy * u * sigma * (1 + g * (1 - sigma)))
            dUp[i] = Float(dy * g * sigma)
        }
    }

    public func crossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, dLogits: UnsafeMutablePointer<Float>?,
                             rows: Int, vocab: Int, gradScale: Float) -> (sum: Double, count: Int) {
        var total = 0.0, count = 0
        for r in 0..<rows {
            let z = logits + r * vocab
            let y = Int(targets[r])
            guard targets[r] != CrossEntropy.ignoreIndex else {
                dLogits?.advanced(by: r * vocab).update(repeating: 0, count: vocab)
                continue
            }
            precondition(y >= 0 && y < vocab, "target \(y) outside the vocabulary of \(vocab) (row \(r))")
            var m = -Double.infinity
            for i in 0..<vocab { m = max(m, Double(z[i])) }
            var sum = 0.0
            for i in 0..<vocab { sum += Foundation.exp(Double(z[i]) - m) }
            let lse = m + Foundation.log(sum)
            total += lse - Double(z[y])
            count += 1
            if let dLogits {
                let g = dLogits + r * vocab
                for i in 0..<vocab {
                    let p = Foundation.exp(Double(z[i]) - lse)
                    g[i] = Float((p - (i == y ? 1 : 0)) * Double(gradScale))
                }
            }
        }
        return (total, count)
    }
}
