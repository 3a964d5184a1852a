import QLoRACore
import QLoRAModel

/// `weights` on `backend` with LoRA pairs `adapters`: the model training runs.
func adaptedModel(config: LlamaConfig, weights: LlamaWeights, lora: LoRAConfig, adapters: LoRAWeights, backend: any Backend,
                  gradientCheckpointing: Bool = true) -> LlamaModel {
    let model = try! LlamaModel(config: config, weights: weights, backend: backend).withAdapter(adapters, lora: lora)
    model.gradientCheckpointing = gradientCheckpointing
    return model
}
