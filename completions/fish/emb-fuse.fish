function __emb-fuse_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-fuse_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __emb-fuse_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-fuse_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __emb-fuse_parse_tokens -S
    set -l unparsed_tokens (__emb-fuse_tokens -pc)
    switch $unparsed_tokens[1]
    case 'emb-fuse'
        __emb-fuse_parse_subcommand -r 1 'weights=' 'temperature=' 'block-rows=' 'q/quiet' 'threads=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __emb-fuse_parse_subcommand -r 1 'version'
        end
    end
end

function __emb-fuse_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __emb-fuse_parse_subcommand -S -a positional_count
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

function __emb-fuse_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __emb-fuse_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__emb-fuse_tokens -p)
    if test -z "$(__emb-fuse_tokens -t)"
        set -l index (count (__emb-fuse_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'emb-fuse' -f
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" weights' -l 'weights' -d 'uncertainty (the paper), precision (the public code: softmax of Σ 1/var / T), uniform, or K comma-separated fixed weights.' -rfka ''
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" temperature' -l 'temperature' -d 'Temperature T of the uncertainty and precision weights.' -rfka ''
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" block-rows' -l 'block-rows' -d 'Rows per block (memory bound).' -rfka ''
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" q quiet' -l 'quiet' -s 'q' -d 'Do not warn when the weights barely vary per row.'
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" version' -l 'version' -d 'Show the version.'
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_positional "emb-fuse" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'emb-fuse' -n '__emb-fuse_should_offer_completions_for_flags_or_options "emb-fuse help" version' -l 'version' -d 'Show the version.'
