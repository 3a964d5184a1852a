import QLoRAFormats

extension LlamaConfig {
    /// An HF `config.json` for `LlamaForCausalLM` describing this model (used when the source is a GGUF
    /// file, which has no config.json). `dtype` is the storage dtype of the unquantized tensors.
    public func hfConfigJSON(dtype: String) -> JSONObject {
        var pairs: [(key: String, value: JSONValue)] = [
            ("architectures", .array([.string("LlamaForCausalLM")])),
            ("attention_bias", .bool(attentionBias)),
            ("attention_dropout", .number(0)),
            ("head_dim", .number(Double(headDim))),
            ("hidden_act", .string("silu")),
            ("hidden_size", .number(Double(hiddenSize))),
            ("initializer_range", .number(0.02)),
            ("intermediate_size", .number(Double(intermediateSize))),
            ("max_position_embeddings", .number(Double(maxPositions))),
            ("mlp_bias", .bool(false)),
            ("model_type", .string("llama")),
            ("num_attention_heads", .number(Double(heads))),
            ("num_hidden_layers", .number(Double(layers))),
            ("num_key_value_heads", .number(Double(kvHeads))),
            ("pretraining_tp", .number(1)),
            ("rms_norm_eps", .number(Double("\(rmsNormEps)") ?? Double(rmsNormEps))),  // shortest float32 digits
            ("rope_theta", .number(ropeTheta)),
            ("tie_word_embeddings", .bool(tieWordEmbeddings)),
            ("torch_dtype", .string(dtype)),
            ("use_cache", .bool(true)),
            ("vocab_size", .number(Double(vocabSize))),
        ]
        // transformers 4.x reads rope_theta + rope_scaling; 5.x reads rope_parameters (and ignores the former).
        var rope: [(key: String, value: JSONValue)] = [("rope_theta", .number(ropeTheta))]
        switch ropeScaling {
        case nil:
            pairs.append(("rope_scaling", .null))
            rope.append(("rope_type", .string("default")))
        case .linear(let factor):
            pairs.append(("rope_scaling", .object(JSONObject([("factor", .number(factor)), ("rope_type", .string("linear"))]))))
            rope += [("factor", .number(factor)), ("rope_type", .string("linear"))]
        case .llama3(let factor, let low, let high, let original):
            let fields: [(key: String, value: JSONValue)] = [
                ("factor", .number(factor)), ("high_freq_factor", .number(high)), ("low_freq_factor", .number(low)),
                ("original_max_position_embeddings", .number(original)), ("rope_type", .string("llama3")),
            ]
            pairs.append(("rope_scaling", .object(JSONObject(fields))))
            rope += fields
        }
        pairs.append(("rope_parameters", .object(JSONObject(rope))))
        if let bos = bosTokenID { pairs.append(("bos_token_id", .number(Double(bos)))) }
        if eosTokenIDs.count == 1 {
            pairs.append(("eos_token_id", .number(Double(eosTokenIDs[0]))))
        } else if !eosTokenIDs.isEmpty {
            pairs.append(("eos_token_id", .array(eosTokenIDs.map { .number(Double($0)) })))
        }
        return JSONObject(pairs.sorted { $0.key < $1.key })
    }
}
