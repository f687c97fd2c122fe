import LinearAlgebra

/// A post-LayerNorm transformer encoder layer (BERT's):
///   h = LayerNorm(x + Attention(x)),  y = LayerNorm(h + W₂ GELU(W₁ h)).
public struct TransformerLayer<T: BLASScalar>: Sendable {
    public var attention: SelfAttention<T>
    public var attentionNorm: LayerNorm<T>
    /// W₁: hidden → intermediate.
    public var intermediate: Linear<T>
    public var activation: GELU<T>
    /// W₂: intermediate → hidden.
    public var output: Linear<T>
    public var outputNorm: LayerNorm<T>

    public init(attention: SelfAttention<T>, attentionNorm: LayerNorm<T>, intermediate: Linear<T>,
                output: Linear<T>, outputNorm: LayerNorm<T>) {
        let h = attention.hidden
        precondition(attentionNorm.features == h && outputNorm.features == h
                     && intermediate.inFeatures == h && output.outFeatures == h
                     && output.inFeatures == intermediate.outFeatures, "TransformerLayer: widths disagree")
        self.attention = attention; self.attentionNorm = attentionNorm; self.intermediate = intermediate
        self.activation = GELU(); self.output = output; self.outputNorm = outputNorm
    }

    /// Points inside the layer whose activations a caller may observe.
    public enum Point: String, Sendable, CaseIterable {
        /// The input of the feed-forward block (after the attention's LayerNorm), hidden wide.
        case ffnIn = "ffn_in"
        /// GELU(W₁ h): the input of the layer's last linear layer W₂, intermediate wide.
        case ffnHidden = "ffn_hidden"
        /// The layer's output.
        case output = "out"
    }

    /// x (rows × hidden) → rows × hidden; `observe` sees the activations at each Point.
    @inlinable
    public func forward(_ x: Matrix<T>, sequences: [Range<Int>],
                        observe: ((Point, Matrix<T>) -> Void)? = nil) -> Matrix<T> {
        var y = x
        var buffers = Buffers(rows: x.rows, hidden: attention.hidden, intermediate: intermediate.outFeatures)
        forward(&y, sequences: sequences, stackedQKV: attention.stackedProjections(), buffers: &buffers, observe: observe)
        return y
    }

    /// The activations one forward needs besides its input, allocated once for a batch and reused
    /// by every layer of a stack.
    public struct Buffers: Sendable {
        public var qkv: Matrix<T>, context: Matrix<T>, attended: Matrix<T>, mid: Matrix<T>
        public init(rows: Int, hidden: Int, intermediate: Int) {
            qkv = Matrix(rows: rows, cols: 3 * hidden); context = Matrix(rows: rows, cols: hidden)
            attended = Matrix(rows: rows, cols: hidden); mid = Matrix(rows: rows, cols: intermediate)
        }
    }

    /// The layer in place: x becomes the layer's output. `stackedQKV` is
    /// `attention.stackedProjections()` (made once by a caller that runs many batches): one GEMM
    /// makes Q, K and V, and attention reads the heads from views of that product.
    @inlinable
    public func forward(_ x: inout Matrix<T>, sequences: [Range<Int>], stackedQKV: Linear<T>, buffers b: inout Buffers,
                        observe: ((Point, Matrix<T>) -> Void)? = nil) {
        let h = attention.hidden, n = x.rows
        if n == 0 { return }
        precondition(b.qkv.rows == n && b.mid.cols == intermediate.outFeatures, "TransformerLayer: buffers for another shape")
        precondition(stackedQKV.outFeatures == 3 * h, "TransformerLayer: stackedQKV is not this layer's [Q K V]")
        stackedQKV.forward(x, into: &b.qkv)
        let longest = sequences.map(\.count).max() ?? 0
        var scores = [T](repeating: 0, count: max(1, longest * longest))
        b.qkv.data.withUnsafeBufferPointer { pq in
            b.context.data.withUnsafeMutableBufferPointer { pc in
                scores.withUnsafeMutableBufferPointer { ps in
                    let q = pq.baseAddress!
                    SelfAttention.attend(rows: n, hidden: h, heads: attention.heads, sequences: sequences,
                                         q: q, k: q + h, v: q + 2 * h, ld: 3 * h, context: pc.baseAddress!, ldc: h,
                                         scores: ps.baseAddress!, keep: false)
                }
            }
        }
        attention.output.forward(b.context, into: &b.attended)
        TransformerLayer.addInPlace(&b.attended, x)
        attentionNorm.forwardInPlace(&b.attended)
        observe?(.ffnIn, b.attended)
        intermediate.forward(b.attended, into: &b.mid)
        activation.forwardInPlace(&b.mid)
        observe?(.ffnHidden, b.mid)
        output.forward(b.mid, into: &x)
        TransformerLayer.addInPlace(&x, b.attended)
        outputNorm.forwardInPlace(&x)
        observe?(.output, x)
    }

    /// a += b (the residual connection).
    @inlinable
    public static func addInPlace(_ a: inout Matrix<T>, _ b: Matrix<T>) {
        precondition(a.rows == b.rows && a.cols == b.cols)
        a.data.withUnsafeMutableBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in for i in pa.indices { pa[i] += pb[i] } }
        }
    }
}
