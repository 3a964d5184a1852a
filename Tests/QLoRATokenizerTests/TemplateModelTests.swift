// GENERATED from jinja2 3.1.6: each expected value below is what jinja2 rendered for the same
// template and conversation, passed as transformers' apply_chat_template passes them in the environment transformers uses for chat templates
// (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]),
// transformers' `tojson`, `raise_exception`, and `strftime_now` on a clock fixed at
// 2024-09-03 14:05:09). `.error` marks cases where jinja2 raised an error.
//
// The templates are the `chat_template` strings of the models' tokenizer_config.json files.

import Foundation
import QLoRATokenizer
import Testing

struct ModelCase: Sendable, CustomTestStringConvertible {
    let model: String
    let name: String
    let template: String
    let messages: [[String: TemplateValue]]
    let addGenerationPrompt: Bool
    let bos: String?
    let eos: String?
    let extra: [String: TemplateValue]
    let expected: JinjaCase.Expected

    init(_ model: String, _ name: String, template: String, messages: [[String: TemplateValue]],
        addGenerationPrompt: Bool, bos: String?, eos: String?, extra: [String: TemplateValue],
        _ expected: JinjaCase.Expected)
    {
        self.model = model
        self.name = name
        self.template = template
        self.messages = messages
        self.addGenerationPrompt = addGenerationPrompt
        self.bos = bos
        self.eos = eos
        self.extra = extra
        self.expected = expected
    }

    var testDescription: String { "\(model): \(name)" }
}

@Suite("Real model chat templates")
struct TemplateModelTests {
    @Test("Model chat templates render conversations exactly as transformers does", arguments: ModelCases.all)
    func modelTemplateMatchesTransformers(_ c: ModelCase) throws {
        var template = try ChatTemplate(c.template)
        template.now = { JinjaCase.fixedDate }
        template.timeZone = TimeZone(identifier: "UTC")!
        let result: Result<String, TemplateError>
        do {
            result = .success(
                try template.render(
                    messages: c.messages, addGenerationPrompt: c.addGenerationPrompt, bosToken: c.bos, eosToken: c.eos,
                    extra: c.extra))
        } catch {
            result = .failure(error)
        }
        switch (c.expected, result) {
        case (.output(let want), .success(let got)):
            #expect(got == want)
        case (.raised(let want), .failure(let error)):
            #expect(error.kind == .raised)
            #expect(error.message == want)
        case (.error, .failure(let error)):
            #expect(error.kind == .runtime)
        case (_, .success(let got)):
            Issue.record("expected an error, rendered \(got.debugDescription)")
        case (_, .failure(let error)):
            Issue.record("unexpected error \(error)")
        }
    }
}

enum ModelTemplates {
    /// SmolLM2-Instruct
    static let smollm2 = #"""
{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}
"""#

    /// Meta-Llama-3-Instruct
    static let llama3 = #"""
{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>

'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>

' }}{% endif %}
"""#

    /// Llama-3.1-Instruct
    static let llama31 = #"""
{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}

"""#

    /// Llama-3.2-Instruct
    static let llama32 = #"""
{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}

"""#

    /// Qwen2-Instruct
    static let qwen2 = #"""
{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful assistant.<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}
"""#

    /// Qwen2.5-Instruct
    static let qwen25 = #"""
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}

"""#

    /// Mistral-7B-Instruct-v0.1
    static let mistralV01 = #"""
{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}
"""#

    /// Mixtral-8x7B-Instruct-v0.1
    static let mixtral = #"""
{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}
"""#

    /// Mistral-7B-Instruct-v0.3
    static let mistralV03 = #"""
{{bos_token}}{% set user_messages = messages | selectattr('role', 'equalto', 'user') | list %}{% for message in messages %}{% if message['role'] == 'user' %}{% if message == user_messages[-1] %}{% if tools %}{{'[AVAILABLE_TOOLS]'+ tools|string + '[/AVAILABLE_TOOLS]'}}{% endif %}{{ '[INST]' + message['content'] + '[/INST]' }}{% else %}{{ '[INST]' + message['content'] + '[/INST]' }}{% endif %}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + ' ' + eos_token}}{% elif message['role'] == 'tool_results' %}{{'[TOOL_RESULTS]' + message['content']|string + '[/TOOL_RESULTS]'}}{% elif message['role'] == 'tool_calls' %}{{'[TOOL_CALLS]' + message['content']|string + eos_token}}{% endif %}{% endfor %}
"""#

    /// Mistral-Nemo-Instruct-2407
    static let mistralNemo = #"""
{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{%- for message in loop_messages | rejectattr("role", "equalto", "tool") | rejectattr("role", "equalto", "tool_results") | selectattr("tool_calls", "undefined") %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS][" }}
            {%- for tool in tools %}
        {%- set tool = tool.function %}
        {{- '{"type": "function", "function": {' }}
        {%- for key, val in tool.items() if key != "return" %}
            {%- if val is string %}
            {{- '"' + key + '": "' + val + '"' }}
            {%- else %}
            {{- '"' + key + '": ' + val|tojson }}
            {%- endif %}
            {%- if not loop.last %}
            {{- ", " }}
            {%- endif %}
        {%- endfor %}
        {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST]" + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST]" + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "tool_calls" or message.tool_calls is defined %}
        {%- if message.tool_calls is defined %}
            {%- set tool_calls = message.tool_calls %}
        {%- else %}
            {%- set tool_calls = message.content %}
        {%- endif %}
        {{- "[TOOL_CALLS][" }}
        {%- for tool_call in tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- message["content"] + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS]{"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}

"""#

    /// Qwen3-Coder-30B-A3B-Instruct
    static let qwen3Coder = #"""
{% macro render_extra_keys(json_dict, handled_keys) %}
    {%- if json_dict is mapping %}
        {%- for json_key in json_dict if json_key not in handled_keys %}
            {%- if json_dict[json_key] is mapping %}
                {{- '\n<' ~ json_key ~ '>' ~ (json_dict[json_key] | tojson | safe) ~ '</' ~ json_key ~ '>' }}
            {%- else %}
                {{-'\n<' ~ json_key ~ '>' ~ (json_dict[json_key] | string) ~ '</' ~ json_key ~ '>' }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{% endmacro %}

{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{%- if not tools is defined %}
    {%- set tools = [] %}
{%- endif %}

{%- if system_message is defined %}
    {{- "<|im_start|>system\n" + system_message }}
{%- else %}
    {%- if tools is iterable and tools | length > 0 %}
        {{- "<|im_start|>system\nYou are Qwen, a helpful AI assistant that can interact with a computer to solve tasks." }}
    {%- endif %}
{%- endif %}
{%- if tools is iterable and tools | length > 0 %}
    {{- "\n\nYou have access to the following functions:\n\n" }}
    {{- "<tools>" }}
    {%- for tool in tools %}
        {%- if tool.function is defined %}
            {%- set tool = tool.function %}
        {%- endif %}
        {{- "\n<function>\n<name>" ~ tool.name ~ "</name>" }}
        {%- if tool.description is defined %}
            {{- '\n<description>' ~ (tool.description | trim) ~ '</description>' }}
        {%- endif %}
        {{- '\n<parameters>' }}
        {%- if tool.parameters is defined and tool.parameters is mapping and tool.parameters.properties is defined and tool.parameters.properties is mapping %}
            {%- for param_name, param_fields in tool.parameters.properties|items %}
                {{- '\n<parameter>' }}
                {{- '\n<name>' ~ param_name ~ '</name>' }}
                {%- if param_fields.type is defined %}
                    {{- '\n<type>' ~ (param_fields.type | string) ~ '</type>' }}
                {%- endif %}
                {%- if param_fields.description is defined %}
                    {{- '\n<description>' ~ (param_fields.description | trim) ~ '</description>' }}
                {%- endif %}
                {%- set handled_keys = ['name', 'type', 'description'] %}
                {{- render_extra_keys(param_fields, handled_keys) }}
                {{- '\n</parameter>' }}
            {%- endfor %}
        {%- endif %}
        {% set handled_keys = ['type', 'properties'] %}
        {{- render_extra_keys(tool.parameters, handled_keys) }}
        {{- '\n</parameters>' }}
        {%- set handled_keys = ['type', 'name', 'description', 'parameters'] %}
        {{- render_extra_keys(tool, handled_keys) }}
        {{- '\n</function>' }}
    {%- endfor %}
    {{- "\n</tools>" }}
    {{- '\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>' }}
{%- endif %}
{%- if system_message is defined %}
    {{- '<|im_end|>\n' }}
{%- else %}
    {%- if tools is iterable and tools | length > 0 %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if message.role == "assistant" and message.tool_calls is defined and message.tool_calls is iterable and message.tool_calls | length > 0 %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content is defined and message.content is string and message.content | trim | length > 0 %}
            {{- '\n' + message.content | trim + '\n' }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n<function=' + tool_call.name + '>\n' }}
            {%- if tool_call.arguments is defined %}
                {%- for args_name, args_value in tool_call.arguments|items %}
                    {{- '<parameter=' + args_name + '>\n' }}
                    {%- set args_value = args_value | tojson | safe if args_value is mapping else args_value | string %}
                    {{- args_value }}
                    {{- '\n</parameter>\n' }}
                {%- endfor %}
            {%- endif %}
            {{- '</function>\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "user" or message.role == "system" or message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.previtem and loop.previtem.role != "tool" %}
            {{- '<|im_start|>user\n' }}
        {%- endif %}
        {{- '<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>\n' }}
        {%- if not loop.last and loop.nextitem.role != "tool" %}
            {{- '<|im_end|>\n' }}
        {%- elif loop.last %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}

"""#
}

enum ModelCases {
    static let all: [ModelCase] = [
        ModelCase("SmolLM2-Instruct", "three-turn conversation with generation prompt", template: ModelTemplates.smollm2, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|im_start|>", eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("SmolLM2-Instruct", "three-turn conversation without generation prompt", template: ModelTemplates.smollm2, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<|im_start|>", eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n")),
        ModelCase("SmolLM2-Instruct", "single user message with generation prompt", template: ModelTemplates.smollm2, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<|im_start|>", eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("SmolLM2-Instruct", "twenty alternating messages", template: ModelTemplates.smollm2, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<|im_start|>", eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nMessage number 0 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 1 with some text.<|im_end|>\n<|im_start|>user\nMessage number 2 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 3 with some text.<|im_end|>\n<|im_start|>user\nMessage number 4 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 5 with some text.<|im_end|>\n<|im_start|>user\nMessage number 6 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 7 with some text.<|im_end|>\n<|im_start|>user\nMessage number 8 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 9 with some text.<|im_end|>\n<|im_start|>user\nMessage number 10 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 11 with some text.<|im_end|>\n<|im_start|>user\nMessage number 12 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 13 with some text.<|im_end|>\n<|im_start|>user\nMessage number 14 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 15 with some text.<|im_end|>\n<|im_start|>user\nMessage number 16 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 17 with some text.<|im_end|>\n<|im_start|>user\nMessage number 18 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 19 with some text.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("SmolLM2-Instruct", "system prompt then conversation", template: ModelTemplates.smollm2, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|im_start|>", eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a friendly chatbot who always responds in the style of a pirate<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("SmolLM2-Instruct", "whitespace and unicode in contents", template: ModelTemplates.smollm2, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<|im_start|>", eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\n  Be terse.\n\n<|im_end|>\n<|im_start|>user\n\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n<|im_end|>\n<|im_start|>assistant\n ¡Hola! 你好 \n<|im_end|>\n<|im_start|>user\nLine one\nLine two\n\n  indented<|im_end|>\n")),
        ModelCase("Meta-Llama-3-Instruct", "three-turn conversation with generation prompt", template: ModelTemplates.llama3, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Meta-Llama-3-Instruct", "three-turn conversation without generation prompt", template: ModelTemplates.llama3, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|>")),
        ModelCase("Meta-Llama-3-Instruct", "single user message with generation prompt", template: ModelTemplates.llama3, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Meta-Llama-3-Instruct", "twenty alternating messages", template: ModelTemplates.llama3, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nMessage number 0 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 1 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 2 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 3 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 4 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 5 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 6 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 7 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 8 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 9 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 10 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 11 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 12 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 13 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 14 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 15 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 16 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 17 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 18 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 19 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Meta-Llama-3-Instruct", "system prompt then conversation", template: ModelTemplates.llama3, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a friendly chatbot who always responds in the style of a pirate<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Meta-Llama-3-Instruct", "whitespace and unicode in contents", template: ModelTemplates.llama3, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHéllo 👋 — “quotes” & <tags> 'single' \"double\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n¡Hola! 你好<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nLine one\nLine two\n\n  indented<|eot_id|>")),
        ModelCase("Llama-3.1-Instruct", "three-turn conversation with generation prompt", template: ModelTemplates.llama31, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.1-Instruct", "three-turn conversation without generation prompt", template: ModelTemplates.llama31, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|>")),
        ModelCase("Llama-3.1-Instruct", "single user message with generation prompt", template: ModelTemplates.llama31, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.1-Instruct", "twenty alternating messages", template: ModelTemplates.llama31, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 0 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 1 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 2 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 3 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 4 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 5 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 6 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 7 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 8 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 9 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 10 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 11 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 12 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 13 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 14 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 15 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 16 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 17 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 18 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 19 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.1-Instruct", "system prompt then conversation", template: ModelTemplates.llama31, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are a friendly chatbot who always responds in the style of a pirate<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.1-Instruct", "whitespace and unicode in contents", template: ModelTemplates.llama31, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHéllo 👋 — “quotes” & <tags> 'single' \"double\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n¡Hola! 你好<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nLine one\nLine two\n\n  indented<|eot_id|>")),
        ModelCase("Llama-3.2-Instruct", "three-turn conversation with generation prompt", template: ModelTemplates.llama32, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 03 Sep 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.2-Instruct", "three-turn conversation without generation prompt", template: ModelTemplates.llama32, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 03 Sep 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|>")),
        ModelCase("Llama-3.2-Instruct", "single user message with generation prompt", template: ModelTemplates.llama32, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 03 Sep 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.2-Instruct", "twenty alternating messages", template: ModelTemplates.llama32, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 03 Sep 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 0 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 1 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 2 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 3 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 4 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 5 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 6 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 7 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 8 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 9 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 10 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 11 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 12 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 13 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 14 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 15 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 16 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 17 with some text.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMessage number 18 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nMessage number 19 with some text.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.2-Instruct", "system prompt then conversation", template: ModelTemplates.llama32, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 03 Sep 2024\n\nYou are a friendly chatbot who always responds in the style of a pirate<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.2-Instruct", "whitespace and unicode in contents", template: ModelTemplates.llama32, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: [:], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 03 Sep 2024\n\nBe terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHéllo 👋 — “quotes” & <tags> 'single' \"double\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n¡Hola! 你好<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nLine one\nLine two\n\n  indented<|eot_id|>")),
        ModelCase("Qwen2-Instruct", "three-turn conversation with generation prompt", template: ModelTemplates.qwen2, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2-Instruct", "three-turn conversation without generation prompt", template: ModelTemplates.qwen2, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n")),
        ModelCase("Qwen2-Instruct", "single user message with generation prompt", template: ModelTemplates.qwen2, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2-Instruct", "twenty alternating messages", template: ModelTemplates.qwen2, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nMessage number 0 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 1 with some text.<|im_end|>\n<|im_start|>user\nMessage number 2 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 3 with some text.<|im_end|>\n<|im_start|>user\nMessage number 4 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 5 with some text.<|im_end|>\n<|im_start|>user\nMessage number 6 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 7 with some text.<|im_end|>\n<|im_start|>user\nMessage number 8 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 9 with some text.<|im_end|>\n<|im_start|>user\nMessage number 10 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 11 with some text.<|im_end|>\n<|im_start|>user\nMessage number 12 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 13 with some text.<|im_end|>\n<|im_start|>user\nMessage number 14 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 15 with some text.<|im_end|>\n<|im_start|>user\nMessage number 16 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 17 with some text.<|im_end|>\n<|im_start|>user\nMessage number 18 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 19 with some text.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2-Instruct", "system prompt then conversation", template: ModelTemplates.qwen2, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a friendly chatbot who always responds in the style of a pirate<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2-Instruct", "whitespace and unicode in contents", template: ModelTemplates.qwen2, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\n  Be terse.\n\n<|im_end|>\n<|im_start|>user\n\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n<|im_end|>\n<|im_start|>assistant\n ¡Hola! 你好 \n<|im_end|>\n<|im_start|>user\nLine one\nLine two\n\n  indented<|im_end|>\n")),
        ModelCase("Qwen2.5-Instruct", "three-turn conversation with generation prompt", template: ModelTemplates.qwen25, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2.5-Instruct", "three-turn conversation without generation prompt", template: ModelTemplates.qwen25, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n")),
        ModelCase("Qwen2.5-Instruct", "single user message with generation prompt", template: ModelTemplates.qwen25, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2.5-Instruct", "twenty alternating messages", template: ModelTemplates.qwen25, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nMessage number 0 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 1 with some text.<|im_end|>\n<|im_start|>user\nMessage number 2 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 3 with some text.<|im_end|>\n<|im_start|>user\nMessage number 4 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 5 with some text.<|im_end|>\n<|im_start|>user\nMessage number 6 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 7 with some text.<|im_end|>\n<|im_start|>user\nMessage number 8 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 9 with some text.<|im_end|>\n<|im_start|>user\nMessage number 10 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 11 with some text.<|im_end|>\n<|im_start|>user\nMessage number 12 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 13 with some text.<|im_end|>\n<|im_start|>user\nMessage number 14 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 15 with some text.<|im_end|>\n<|im_start|>user\nMessage number 16 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 17 with some text.<|im_end|>\n<|im_start|>user\nMessage number 18 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 19 with some text.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2.5-Instruct", "system prompt then conversation", template: ModelTemplates.qwen25, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a friendly chatbot who always responds in the style of a pirate<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2.5-Instruct", "whitespace and unicode in contents", template: ModelTemplates.qwen25, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\n  Be terse.\n\n<|im_end|>\n<|im_start|>user\n\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n<|im_end|>\n<|im_start|>assistant\n ¡Hola! 你好 \n<|im_end|>\n<|im_start|>user\nLine one\nLine two\n\n  indented<|im_end|>\n")),
        ModelCase("Mistral-7B-Instruct-v0.1", "three-turn conversation with generation prompt", template: ModelTemplates.mistralV01, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> [INST] I'd like to show off how chat templating works! [/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.1", "three-turn conversation without generation prompt", template: ModelTemplates.mistralV01, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> [INST] I'd like to show off how chat templating works! [/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.1", "single user message with generation prompt", template: ModelTemplates.mistralV01, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] What is 2+2? [/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.1", "twenty alternating messages", template: ModelTemplates.mistralV01, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] Message number 0 with some text. [/INST]Message number 1 with some text.</s> [INST] Message number 2 with some text. [/INST]Message number 3 with some text.</s> [INST] Message number 4 with some text. [/INST]Message number 5 with some text.</s> [INST] Message number 6 with some text. [/INST]Message number 7 with some text.</s> [INST] Message number 8 with some text. [/INST]Message number 9 with some text.</s> [INST] Message number 10 with some text. [/INST]Message number 11 with some text.</s> [INST] Message number 12 with some text. [/INST]Message number 13 with some text.</s> [INST] Message number 14 with some text. [/INST]Message number 15 with some text.</s> [INST] Message number 16 with some text. [/INST]Message number 17 with some text.</s> [INST] Message number 18 with some text. [/INST]Message number 19 with some text.</s> ")),
        ModelCase("Mistral-7B-Instruct-v0.1", "a system message is rejected", template: ModelTemplates.mistralV01, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .raised("Conversation roles must alternate user/assistant/user/assistant/...")),
        ModelCase("Mistral-7B-Instruct-v0.1", "whitespace and unicode in contents", template: ModelTemplates.mistralV01, messages: [["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] \n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n [/INST] ¡Hola! 你好 \n</s> [INST] Line one\nLine two\n\n  indented [/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.1", "consecutive user messages are rejected", template: ModelTemplates.mistralV01, messages: [["role": .string("user"), "content": .string("one")], ["role": .string("user"), "content": .string("two")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .raised("Conversation roles must alternate user/assistant/user/assistant/...")),
        ModelCase("Mixtral-8x7B-Instruct-v0.1", "three-turn conversation with generation prompt", template: ModelTemplates.mixtral, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s>[INST] I'd like to show off how chat templating works! [/INST]")),
        ModelCase("Mixtral-8x7B-Instruct-v0.1", "three-turn conversation without generation prompt", template: ModelTemplates.mixtral, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s>[INST] I'd like to show off how chat templating works! [/INST]")),
        ModelCase("Mixtral-8x7B-Instruct-v0.1", "single user message with generation prompt", template: ModelTemplates.mixtral, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] What is 2+2? [/INST]")),
        ModelCase("Mixtral-8x7B-Instruct-v0.1", "twenty alternating messages", template: ModelTemplates.mixtral, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] Message number 0 with some text. [/INST]Message number 1 with some text.</s>[INST] Message number 2 with some text. [/INST]Message number 3 with some text.</s>[INST] Message number 4 with some text. [/INST]Message number 5 with some text.</s>[INST] Message number 6 with some text. [/INST]Message number 7 with some text.</s>[INST] Message number 8 with some text. [/INST]Message number 9 with some text.</s>[INST] Message number 10 with some text. [/INST]Message number 11 with some text.</s>[INST] Message number 12 with some text. [/INST]Message number 13 with some text.</s>[INST] Message number 14 with some text. [/INST]Message number 15 with some text.</s>[INST] Message number 16 with some text. [/INST]Message number 17 with some text.</s>[INST] Message number 18 with some text. [/INST]Message number 19 with some text.</s>")),
        ModelCase("Mixtral-8x7B-Instruct-v0.1", "a system message is rejected", template: ModelTemplates.mixtral, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .raised("Conversation roles must alternate user/assistant/user/assistant/...")),
        ModelCase("Mixtral-8x7B-Instruct-v0.1", "whitespace and unicode in contents", template: ModelTemplates.mixtral, messages: [["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST] \n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n [/INST] ¡Hola! 你好 \n</s>[INST] Line one\nLine two\n\n  indented [/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.3", "three-turn conversation with generation prompt", template: ModelTemplates.mistralV03, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Hello, how are you?[/INST] I'm doing great. How can I help you today? </s>[INST]I'd like to show off how chat templating works![/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.3", "three-turn conversation without generation prompt", template: ModelTemplates.mistralV03, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Hello, how are you?[/INST] I'm doing great. How can I help you today? </s>[INST]I'd like to show off how chat templating works![/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.3", "single user message with generation prompt", template: ModelTemplates.mistralV03, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]What is 2+2?[/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.3", "twenty alternating messages", template: ModelTemplates.mistralV03, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Message number 0 with some text.[/INST] Message number 1 with some text. </s>[INST]Message number 2 with some text.[/INST] Message number 3 with some text. </s>[INST]Message number 4 with some text.[/INST] Message number 5 with some text. </s>[INST]Message number 6 with some text.[/INST] Message number 7 with some text. </s>[INST]Message number 8 with some text.[/INST] Message number 9 with some text. </s>[INST]Message number 10 with some text.[/INST] Message number 11 with some text. </s>[INST]Message number 12 with some text.[/INST] Message number 13 with some text. </s>[INST]Message number 14 with some text.[/INST] Message number 15 with some text. </s>[INST]Message number 16 with some text.[/INST] Message number 17 with some text. </s>[INST]Message number 18 with some text.[/INST] Message number 19 with some text. </s>")),
        ModelCase("Mistral-7B-Instruct-v0.3", "system prompt then conversation", template: ModelTemplates.mistralV03, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Hello, how are you?[/INST] I'm doing great. How can I help you today? </s>[INST]I'd like to show off how chat templating works![/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.3", "whitespace and unicode in contents", template: ModelTemplates.mistralV03, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n[/INST]  ¡Hola! 你好 \n </s>[INST]Line one\nLine two\n\n  indented[/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.3", "consecutive user messages are rejected", template: ModelTemplates.mistralV03, messages: [["role": .string("user"), "content": .string("one")], ["role": .string("user"), "content": .string("two")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]one[/INST][INST]two[/INST]")),
        ModelCase("Mistral-Nemo-Instruct-2407", "three-turn conversation with generation prompt", template: ModelTemplates.mistralNemo, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Hello, how are you?[/INST]I'm doing great. How can I help you today?</s>[INST]I'd like to show off how chat templating works![/INST]")),
        ModelCase("Mistral-Nemo-Instruct-2407", "three-turn conversation without generation prompt", template: ModelTemplates.mistralNemo, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Hello, how are you?[/INST]I'm doing great. How can I help you today?</s>[INST]I'd like to show off how chat templating works![/INST]")),
        ModelCase("Mistral-Nemo-Instruct-2407", "single user message with generation prompt", template: ModelTemplates.mistralNemo, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]What is 2+2?[/INST]")),
        ModelCase("Mistral-Nemo-Instruct-2407", "twenty alternating messages", template: ModelTemplates.mistralNemo, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Message number 0 with some text.[/INST]Message number 1 with some text.</s>[INST]Message number 2 with some text.[/INST]Message number 3 with some text.</s>[INST]Message number 4 with some text.[/INST]Message number 5 with some text.</s>[INST]Message number 6 with some text.[/INST]Message number 7 with some text.</s>[INST]Message number 8 with some text.[/INST]Message number 9 with some text.</s>[INST]Message number 10 with some text.[/INST]Message number 11 with some text.</s>[INST]Message number 12 with some text.[/INST]Message number 13 with some text.</s>[INST]Message number 14 with some text.[/INST]Message number 15 with some text.</s>[INST]Message number 16 with some text.[/INST]Message number 17 with some text.</s>[INST]Message number 18 with some text.[/INST]Message number 19 with some text.</s>")),
        ModelCase("Mistral-Nemo-Instruct-2407", "system prompt then conversation", template: ModelTemplates.mistralNemo, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]Hello, how are you?[/INST]I'm doing great. How can I help you today?</s>[INST]You are a friendly chatbot who always responds in the style of a pirate\n\nI'd like to show off how chat templating works![/INST]")),
        ModelCase("Mistral-Nemo-Instruct-2407", "whitespace and unicode in contents", template: ModelTemplates.mistralNemo, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: [:], .output("<s>[INST]\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n[/INST] ¡Hola! 你好 \n</s>[INST]  Be terse.\n\n\n\nLine one\nLine two\n\n  indented[/INST]")),
        ModelCase("Mistral-Nemo-Instruct-2407", "consecutive user messages are rejected", template: ModelTemplates.mistralNemo, messages: [["role": .string("user"), "content": .string("one")], ["role": .string("user"), "content": .string("two")]], addGenerationPrompt: true, bos: "<s>", eos: "</s>", extra: [:], .raised("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "three-turn conversation with generation prompt", template: ModelTemplates.qwen3Coder, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "three-turn conversation without generation prompt", template: ModelTemplates.qwen3Coder, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "single user message with generation prompt", template: ModelTemplates.qwen3Coder, messages: [["role": .string("user"), "content": .string("What is 2+2?")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "twenty alternating messages", template: ModelTemplates.qwen3Coder, messages: [["role": .string("user"), "content": .string("Message number 0 with some text.")], ["role": .string("assistant"), "content": .string("Message number 1 with some text.")], ["role": .string("user"), "content": .string("Message number 2 with some text.")], ["role": .string("assistant"), "content": .string("Message number 3 with some text.")], ["role": .string("user"), "content": .string("Message number 4 with some text.")], ["role": .string("assistant"), "content": .string("Message number 5 with some text.")], ["role": .string("user"), "content": .string("Message number 6 with some text.")], ["role": .string("assistant"), "content": .string("Message number 7 with some text.")], ["role": .string("user"), "content": .string("Message number 8 with some text.")], ["role": .string("assistant"), "content": .string("Message number 9 with some text.")], ["role": .string("user"), "content": .string("Message number 10 with some text.")], ["role": .string("assistant"), "content": .string("Message number 11 with some text.")], ["role": .string("user"), "content": .string("Message number 12 with some text.")], ["role": .string("assistant"), "content": .string("Message number 13 with some text.")], ["role": .string("user"), "content": .string("Message number 14 with some text.")], ["role": .string("assistant"), "content": .string("Message number 15 with some text.")], ["role": .string("user"), "content": .string("Message number 16 with some text.")], ["role": .string("assistant"), "content": .string("Message number 17 with some text.")], ["role": .string("user"), "content": .string("Message number 18 with some text.")], ["role": .string("assistant"), "content": .string("Message number 19 with some text.")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>user\nMessage number 0 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 1 with some text.<|im_end|>\n<|im_start|>user\nMessage number 2 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 3 with some text.<|im_end|>\n<|im_start|>user\nMessage number 4 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 5 with some text.<|im_end|>\n<|im_start|>user\nMessage number 6 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 7 with some text.<|im_end|>\n<|im_start|>user\nMessage number 8 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 9 with some text.<|im_end|>\n<|im_start|>user\nMessage number 10 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 11 with some text.<|im_end|>\n<|im_start|>user\nMessage number 12 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 13 with some text.<|im_end|>\n<|im_start|>user\nMessage number 14 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 15 with some text.<|im_end|>\n<|im_start|>user\nMessage number 16 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 17 with some text.<|im_end|>\n<|im_start|>user\nMessage number 18 with some text.<|im_end|>\n<|im_start|>assistant\nMessage number 19 with some text.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "system prompt then conversation", template: ModelTemplates.qwen3Coder, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nYou are a friendly chatbot who always responds in the style of a pirate<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "whitespace and unicode in contents", template: ModelTemplates.qwen3Coder, messages: [["role": .string("system"), "content": .string("  Be terse.\n\n")], ["role": .string("user"), "content": .string("\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n")], ["role": .string("assistant"), "content": .string(" ¡Hola! 你好 \n")], ["role": .string("user"), "content": .string("Line one\nLine two\n\n  indented")]], addGenerationPrompt: false, bos: nil, eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\n  Be terse.\n\n<|im_end|>\n<|im_start|>user\n\n  Héllo 👋 — “quotes” & <tags> 'single' \"double\"\t\n<|im_end|>\n<|im_start|>assistant\n ¡Hola! 你好 \n<|im_end|>\n<|im_start|>user\nLine one\nLine two\n\n  indented<|im_end|>\n")),
        ModelCase("SmolLM2-Instruct", "system-only conversation", template: ModelTemplates.smollm2, messages: [["role": .string("system"), "content": .string("Only a system prompt.")]], addGenerationPrompt: true, bos: "<|im_start|>", eos: "<|im_end|>", extra: [:], .output("<|im_start|>system\nOnly a system prompt.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Llama-3.1-Instruct", "custom date_string", template: ModelTemplates.llama31, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: ["date_string": .string("01 Jan 2025")], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\nYou are a friendly chatbot who always responds in the style of a pirate<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.1-Instruct", "tools in the first user message with a tool call and result", template: ModelTemplates.llama31, messages: [["role": .string("system"), "content": .string("You are a helpful assistant.")], ["role": .string("user"), "content": .string("What's the weather like in Paris?")], ["role": .string("assistant"), "content": .string(""), "tool_calls": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("arguments", .dictionary(TemplateDictionary([("location", .string("Paris, France")), ("unit", .string("celsius"))])))])))]))])], ["role": .string("tool"), "content": .string("{\"temperature\": 22, \"unit\": \"celsius\"}")], ["role": .string("assistant"), "content": .string("It is 22 °C in Paris.")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))])], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_current_weather\",\n        \"description\": \"Get the current weather in a given location\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"location\": {\n                    \"type\": \"string\",\n                    \"description\": \"The city and state, e.g. San Francisco, CA\"\n                },\n                \"unit\": {\n                    \"type\": \"string\",\n                    \"enum\": [\n                        \"celsius\",\n                        \"fahrenheit\"\n                    ]\n                }\n            },\n            \"required\": [\n                \"location\"\n            ]\n        }\n    }\n}\n\nWhat's the weather like in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_current_weather\", \"parameters\": {\"location\": \"Paris, France\", \"unit\": \"celsius\"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temperature\\\": 22, \\\"unit\\\": \\\"celsius\\\"}\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt is 22 °C in Paris.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.1-Instruct", "tools in the system message", template: ModelTemplates.llama31, messages: [["role": .string("system"), "content": .string("You are a helpful assistant.")], ["role": .string("user"), "content": .string("What's the weather like in Paris?")], ["role": .string("assistant"), "content": .string(""), "tool_calls": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("arguments", .dictionary(TemplateDictionary([("location", .string("Paris, France")), ("unit", .string("celsius"))])))])))]))])], ["role": .string("tool"), "content": .string("{\"temperature\": 22, \"unit\": \"celsius\"}")], ["role": .string("assistant"), "content": .string("It is 22 °C in Paris.")]], addGenerationPrompt: false, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))]), "tools_in_user_message": .bool(false)], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou have access to the following functions. To call a function, please respond with JSON for a function call.Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_current_weather\",\n        \"description\": \"Get the current weather in a given location\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"location\": {\n                    \"type\": \"string\",\n                    \"description\": \"The city and state, e.g. San Francisco, CA\"\n                },\n                \"unit\": {\n                    \"type\": \"string\",\n                    \"enum\": [\n                        \"celsius\",\n                        \"fahrenheit\"\n                    ]\n                }\n            },\n            \"required\": [\n                \"location\"\n            ]\n        }\n    }\n}\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat's the weather like in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_current_weather\", \"parameters\": {\"location\": \"Paris, France\", \"unit\": \"celsius\"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temperature\\\": 22, \\\"unit\\\": \\\"celsius\\\"}\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt is 22 °C in Paris.<|eot_id|>")),
        ModelCase("Llama-3.1-Instruct", "builtin tools", template: ModelTemplates.llama31, messages: [["role": .string("system"), "content": .string("You are a friendly chatbot who always responds in the style of a pirate")], ["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: ["builtin_tools": .array([.string("brave_search"), .string("wolfram_alpha"), .string("code_interpreter")])], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nTools: brave_search, wolfram_alpha\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are a friendly chatbot who always responds in the style of a pirate<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Llama-3.2-Instruct", "tools in the first user message", template: ModelTemplates.llama32, messages: [["role": .string("system"), "content": .string("You are a helpful assistant.")], ["role": .string("user"), "content": .string("What's the weather like in Paris?")], ["role": .string("assistant"), "content": .string(""), "tool_calls": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("arguments", .dictionary(TemplateDictionary([("location", .string("Paris, France")), ("unit", .string("celsius"))])))])))]))])], ["role": .string("tool"), "content": .string("{\"temperature\": 22, \"unit\": \"celsius\"}")], ["role": .string("assistant"), "content": .string("It is 22 °C in Paris.")]], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))])], .output("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 03 Sep 2024\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_current_weather\",\n        \"description\": \"Get the current weather in a given location\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"location\": {\n                    \"type\": \"string\",\n                    \"description\": \"The city and state, e.g. San Francisco, CA\"\n                },\n                \"unit\": {\n                    \"type\": \"string\",\n                    \"enum\": [\n                        \"celsius\",\n                        \"fahrenheit\"\n                    ]\n                }\n            },\n            \"required\": [\n                \"location\"\n            ]\n        }\n    }\n}\n\nWhat's the weather like in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_current_weather\", \"parameters\": {\"location\": \"Paris, France\", \"unit\": \"celsius\"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temperature\\\": 22, \\\"unit\\\": \\\"celsius\\\"}\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt is 22 °C in Paris.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")),
        ModelCase("Qwen2.5-Instruct", "tools with a tool call and tool response", template: ModelTemplates.qwen25, messages: [["role": .string("system"), "content": .string("You are a helpful assistant.")], ["role": .string("user"), "content": .string("What's the weather like in Paris?")], ["role": .string("assistant"), "content": .string(""), "tool_calls": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("arguments", .dictionary(TemplateDictionary([("location", .string("Paris, France")), ("unit", .string("celsius"))])))])))]))])], ["role": .string("tool"), "content": .string("{\"temperature\": 22, \"unit\": \"celsius\"}")], ["role": .string("assistant"), "content": .string("It is 22 °C in Paris.")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))])], .output("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_current_weather\", \"description\": \"Get the current weather in a given location\", \"parameters\": {\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\", \"description\": \"The city and state, e.g. San Francisco, CA\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": [\"location\"]}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWhat's the weather like in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", \"unit\": \"celsius\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temperature\": 22, \"unit\": \"celsius\"}\n</tool_response><|im_end|>\n<|im_start|>assistant\nIt is 22 °C in Paris.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen2.5-Instruct", "tools without a system message", template: ModelTemplates.qwen25, messages: [["role": .string("user"), "content": .string("What's the weather like in Paris?")], ["role": .string("assistant"), "content": .string(""), "tool_calls": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("arguments", .dictionary(TemplateDictionary([("location", .string("Paris, France")), ("unit", .string("celsius"))])))])))]))])], ["role": .string("tool"), "content": .string("{\"temperature\": 22, \"unit\": \"celsius\"}")], ["role": .string("assistant"), "content": .string("It is 22 °C in Paris.")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))])], .output("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_current_weather\", \"description\": \"Get the current weather in a given location\", \"parameters\": {\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\", \"description\": \"The city and state, e.g. San Francisco, CA\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": [\"location\"]}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWhat's the weather like in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", \"unit\": \"celsius\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temperature\": 22, \"unit\": \"celsius\"}\n</tool_response><|im_end|>\n<|im_start|>assistant\nIt is 22 °C in Paris.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Mistral-Nemo-Instruct-2407", "tools with the last user message", template: ModelTemplates.mistralNemo, messages: [["role": .string("user"), "content": .string("What's the weather like in Paris?")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))])], .output("<s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": \"get_current_weather\", \"description\": \"Get the current weather in a given location\", \"parameters\": {\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\", \"description\": \"The city and state, e.g. San Francisco, CA\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": [\"location\"]}}}][/AVAILABLE_TOOLS][INST]What's the weather like in Paris?[/INST]")),
        ModelCase("Mistral-7B-Instruct-v0.3", "tools with the last user message", template: ModelTemplates.mistralV03, messages: [["role": .string("user"), "content": .string("Hello, how are you?")], ["role": .string("assistant"), "content": .string("I'm doing great. How can I help you today?")], ["role": .string("user"), "content": .string("I'd like to show off how chat templating works!")]], addGenerationPrompt: false, bos: "<s>", eos: "</s>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))])], .output("<s>[INST]Hello, how are you?[/INST] I'm doing great. How can I help you today? </s>[AVAILABLE_TOOLS][{'type': 'function', 'function': {'name': 'get_current_weather', 'description': 'Get the current weather in a given location', 'parameters': {'type': 'object', 'properties': {'location': {'type': 'string', 'description': 'The city and state, e.g. San Francisco, CA'}, 'unit': {'type': 'string', 'enum': ['celsius', 'fahrenheit']}}, 'required': ['location']}}}][/AVAILABLE_TOOLS][INST]I'd like to show off how chat templating works![/INST]")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "tools with a tool call and tool responses", template: ModelTemplates.qwen3Coder, messages: [["role": .string("system"), "content": .string("You are a helpful assistant.")], ["role": .string("user"), "content": .string("What's the weather like in Paris?")], ["role": .string("assistant"), "content": .string(""), "tool_calls": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("arguments", .dictionary(TemplateDictionary([("location", .string("Paris, France")), ("unit", .string("celsius"))])))])))]))])], ["role": .string("tool"), "content": .string("{\"temperature\": 22, \"unit\": \"celsius\"}")], ["role": .string("assistant"), "content": .string("It is 22 °C in Paris.")]], addGenerationPrompt: true, bos: nil, eos: "<|im_end|>", extra: ["tools": .array([.dictionary(TemplateDictionary([("type", .string("function")), ("function", .dictionary(TemplateDictionary([("name", .string("get_current_weather")), ("description", .string("Get the current weather in a given location")), ("parameters", .dictionary(TemplateDictionary([("type", .string("object")), ("properties", .dictionary(TemplateDictionary([("location", .dictionary(TemplateDictionary([("type", .string("string")), ("description", .string("The city and state, e.g. San Francisco, CA"))]))), ("unit", .dictionary(TemplateDictionary([("type", .string("string")), ("enum", .array([.string("celsius"), .string("fahrenheit")]))])))]))), ("required", .array([.string("location")]))])))])))]))])], .output("<|im_start|>system\nYou are a helpful assistant.\n\nYou have access to the following functions:\n\n<tools>\n<function>\n<name>get_current_weather</name>\n<description>Get the current weather in a given location</description>\n<parameters>\n<parameter>\n<name>location</name>\n<type>string</type>\n<description>The city and state, e.g. San Francisco, CA</description>\n</parameter>\n<parameter>\n<name>unit</name>\n<type>string</type>\n<enum>['celsius', 'fahrenheit']</enum>\n</parameter>\n<required>['location']</required>\n</parameters>\n</function>\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT><|im_end|>\n<|im_start|>user\nWhat's the weather like in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n<function=get_current_weather>\n<parameter=location>\nParis, France\n</parameter>\n<parameter=unit>\ncelsius\n</parameter>\n</function>\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temperature\": 22, \"unit\": \"celsius\"}\n</tool_response>\n<|im_end|>\n<|im_start|>assistant\nIt is 22 °C in Paris.<|im_end|>\n<|im_start|>assistant\n")),
        ModelCase("Qwen3-Coder-30B-A3B-Instruct", "a JSON-string tool call argument is an error, as in transformers", template: ModelTemplates.qwen3Coder, messages: [["role": .string("user"), "content": .string("x")], ["role": .string("assistant"), "content": .string(""), "tool_calls": .array([.dictionary(TemplateDictionary([("function", .dictionary(TemplateDictionary([("name", .string("f")), ("arguments", .string("{\"a\": 1}"))])))]))])]], addGenerationPrompt: false, bos: nil, eos: "<|im_end|>", extra: [:], .error),
    ]
}
