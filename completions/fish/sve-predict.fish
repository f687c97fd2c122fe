function __sve-predict_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __sve-predict_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __sve-predict_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __sve-predict_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __sve-predict_parse_tokens -S
    set -l unparsed_tokens (__sve-predict_tokens -pc)
    switch $unparsed_tokens[1]
    case 'sve-predict'
        __sve-predict_parse_subcommand 1 'model=' 'average=' 'no-temperature' 'pass=+' 'features=' 'chunk=' 'lengths=' 'max-tokens=' 'threads=' 'o/output=' 'level=' 'no-shuffle' 'q/quiet' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __sve-predict_parse_subcommand -r 1 'version'
        end
    end
end

function __sve-predict_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __sve-predict_parse_subcommand -S -a positional_count
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

function __sve-predict_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __sve-predict_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__sve-predict_tokens -p)
    if test -z "$(__sve-predict_tokens -t)"
        set -l index (count (__sve-predict_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'sve-predict' -f
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" model' -l 'model' -d 'The model from sve-train.' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" average' -l 'average' -d 'probs: average member probabilities (default); logits: average member logits.' -rfka 'probs logits'
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" no-temperature' -l 'no-temperature' -d 'Ignore the fitted temperature (T = 1).'
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict"' -l 'pass' -d 'Copy this row-aligned input tensor (e.g. labels) to the output (repeatable).' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" features' -l 'features' -d 'Name of the features tensor.' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" chunk' -l 'chunk' -d 'Rows per chunk.' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" lengths' -l 'lengths' -d 'Token level: name of the tensor of each text\'s token rows.' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" max-tokens' -l 'max-tokens' -d 'Token level: at most N token rows per forward pass.' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" q quiet' -s 'q' -l 'quiet' -d 'Print no notes or warnings on standard error (errors are always printed).'
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" version' -l 'version' -d 'Show the version.'
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_positional "sve-predict" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'sve-predict' -n '__sve-predict_should_offer_completions_for_flags_or_options "sve-predict help" version' -l 'version' -d 'Show the version.'
