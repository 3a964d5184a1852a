// Jinja sources for models whose tokenizer ships no chat template.

/// Built-in chat templates, usable with `ChatTemplate(...)`.
public enum BuiltinChatTemplates {
    /// ChatML without a default system prompt: `<|im_start|>{role}\n{content}<|im_end|>\n` per
    /// message; the generation prompt is `<|im_start|>assistant\n`.
    public static let chatml = """
        {%- for message in messages %}
            {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\\n' }}
        {%- endif %}
        """

    /// The Llama-3 Instruct template: `bos_token` once, then per message
    /// `<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>`; the generation
    /// prompt is `<|start_header_id|>assistant<|end_header_id|>\n\n`.
    public static let llama3 = """
        {%- set loop_messages = messages %}
        {%- for message in loop_messages %}
            {%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}
            {%- if loop.index0 == 0 %}
                {%- set content = bos_token + content %}
            {%- endif %}
            {{- content }}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
        {%- endif %}
        """

    /// Stanford Alpaca prompt style for conversations:
    /// - a `system` message's text, followed by a blank line (`{system}\n\n`), wherever it appears;
    /// - a `user` message as `### Instruction:\n{user}\n\n`;
    /// - an `assistant` message as `### Response:\n{assistant}` + `eos_token` (empty when undefined),
    ///   followed by `\n\n` when more messages come;
    /// - the generation prompt is `### Response:\n`.
    /// So a single exchange renders `### Instruction:\nQ\n\n### Response:\nA</s>`: every assistant
    /// turn ends with `eos_token`, the token a model learns to stop on. Other roles raise an error.
    public static let alpaca = """
        {%- for message in messages %}
            {%- if message['role'] == 'system' %}
                {{- message['content'] + '\\n\\n' }}
            {%- elif message['role'] == 'user' %}
                {{- '### Instruction:\\n' + message['content'] + '\\n\\n' }}
            {%- elif message['role'] == 'assistant' %}
                {{- '### Response:\\n' + message['content'] + (eos_token | default('')) }}
                {%- if not loop.last %}
                    {{- '\\n\\n' }}
                {%- endif %}
            {%- else %}
                {{- raise_exception('Alpaca template supports system, user and assistant roles, got ' + message['role']) }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '### Response:\\n' }}
        {%- endif %}
        """
}
