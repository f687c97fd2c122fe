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
        var h = attention.forward(x, sequences: sequences)
        TransformerLayer.addInPlace(&h, x)
        attentionNorm.forwardInPlace(&h)
        observe?(.ffnIn, h)
        var mid = intermediate.forward(h)
        activation.forwardInPlace(&mid)
        observe?(.ffnHidden, mid)
        var y = output.forward(mid)
        TransformerLayer.addInPlace(&y, h)
        outputNorm.forwardInPlace(&y)
        observe?(.output, y)
        return y
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
