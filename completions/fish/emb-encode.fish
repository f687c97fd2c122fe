function __emb-encode_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-encode_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __emb-encode_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-encode_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __emb-encode_parse_tokens -S
    set -l unparsed_tokens (__emb-encode_tokens -pc)
    switch $unparsed_tokens[1]
    case 'emb-encode'
        __emb-encode_parse_subcommand 1 'model=' 'tsv=' 'prefix=' 'replace-invalid' 'emit=+' 'pooling=' 'normalize' 'no-normalize' 'max-length=' 'batch-size=' 'window=' 'q/quiet' 'v' 'threads=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __emb-encode_parse_subcommand -r 1 'version'
        end
    end
end

function __emb-encode_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __emb-encode_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __emb-encode_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __emb-encode_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__emb-encode_tokens -p)
    if test -z "$(__emb-encode_tokens -t)"
        set -l index (count (__emb-encode_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'emb-encode' -f
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" model' -l 'model' -d 'Model directory (Hugging Face layout).' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" tsv' -l 'tsv' -d 'Take the text from column COL (1-based) of tab-separated lines.' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" prefix' -l 'prefix' -d 'Put TEXT before every line (e.g. "query: " or "passage: " for e5 models).' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" replace-invalid' -l 'replace-invalid' -d 'Replace bytes that are not UTF-8 by U+FFFD instead of refusing the line.'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode"' -l 'emit' -d 'Also write activations at POINT: last-layer-input, layer.N.ffn_in, layer.N.ffn_hidden, layer.N.out (pooled), layer.N.input (token level, with \'lengths\'). Repeat it, or give a comma list.' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" pooling' -l 'pooling' -d 'Pooling: mean, cls or max (default: the model\'s, else mean).' -rfka 'mean cls max'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" normalize' -l 'normalize' -d 'L2-normalise the embeddings (default: as the model\'s modules.json says).'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" no-normalize' -l 'no-normalize' -d 'L2-normalise the embeddings (default: as the model\'s modules.json says).'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" max-length' -l 'max-length' -d 'Truncate texts at N tokens, [CLS] and [SEP] included (default and upper bound: the model\'s limit).' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" batch-size' -l 'batch-size' -d 'Texts per forward pass.' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" window' -l 'window' -d 'Lines read and sorted by length at a time (a multiple of the batch size is best).' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" q quiet' -l 'quiet' -s 'q' -d 'No notes on standard error.'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" v' -s 'v' -d 'Say what was chosen: model, pooling, threads.'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" version' -l 'version' -d 'Show the version.'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_positional "emb-encode" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'emb-encode' -n '__emb-encode_should_offer_completions_for_flags_or_options "emb-encode help" version' -l 'version' -d 'Show the version.'
