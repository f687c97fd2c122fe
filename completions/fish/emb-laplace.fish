function __emb-laplace_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-laplace_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __emb-laplace_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-laplace_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __emb-laplace_parse_tokens -S
    set -l unparsed_tokens (__emb-laplace_tokens -pc)
    switch $unparsed_tokens[1]
    case 'emb-laplace'
        __emb-laplace_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'fit'
            __emb-laplace_parse_subcommand 1 'layer=' 'weight-name=' 'bias-name=' 'batch-size=' 'temperature=' 'prior-precision=' 'heldout=' 'variance-scale=' 'v/verbose' 'threads=' 'o/output=' 'level=' 'no-shuffle' 'q/quiet' 'version' 'h/help'
        case 'apply'
            __emb-laplace_parse_subcommand 1 'posterior=' 'input-name=' 'normalize=' 'variance-scale=' 'block-rows=' 'v/verbose' 'trace' 'threads=' 'o/output=' 'level=' 'no-shuffle' 'q/quiet' 'version' 'h/help'
        case 'help'
            __emb-laplace_parse_subcommand -r 1 'version'
        end
    end
end

function __emb-laplace_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __emb-laplace_parse_subcommand -S -a positional_count
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

function __emb-laplace_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __emb-laplace_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__emb-laplace_tokens -p)
    if test -z "$(__emb-laplace_tokens -t)"
        set -l index (count (__emb-laplace_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'emb-laplace' -f
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace" version' -l 'version' -d 'Show the version.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_positional "emb-laplace" -eq 1' -fa 'fit' -d 'Fit the Laplace posterior of the last layer on positive pairs.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_positional "emb-laplace" -eq 1' -fa 'apply' -d 'Give embeddings a mean and a per-dimension variance from a fitted posterior.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_positional "emb-laplace" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" layer' -l 'layer' -d 'Stream holding the last layer\'s weight (D×P) and bias (D); default: the identity adapter.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" weight-name' -l 'weight-name' -d 'Name of the weight tensor in --layer.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" bias-name' -l 'bias-name' -d 'Name of the bias tensor in --layer (absent: b = 0).' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" batch-size' -l 'batch-size' -d 'Pairs per InfoNCE batch.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" temperature' -l 'temperature' -d 'InfoNCE temperature τ (the reference uses 1 on unnormalised embeddings).' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" prior-precision' -l 'prior-precision' -d 'Prior precision λ (default: fitted by MacKay\'s fixed point; the reference code uses 1e-5).' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" heldout' -l 'heldout' -d 'Held-out pairs (\'query\', \'positive\') to fit the variance scale on.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" variance-scale' -l 'variance-scale' -d 'Set the variance scale c by hand.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" v verbose' -l 'verbose' -s 'v' -d 'Print a summary (pairs, loss, λ, γ and the share of Fisher entries below λ, c) on standard error.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" q quiet' -s 'q' -l 'quiet' -d 'Print no notes or warnings on standard error (errors are always printed).'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" version' -l 'version' -d 'Show the version.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace fit" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" posterior' -l 'posterior' -d 'Posterior from \'emb-laplace fit\'.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" input-name' -l 'input-name' -d 'Tensor to read (N×P).' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" normalize' -l 'normalize' -d 'Normalise the means: none, delta (delta-method variance) or simple (var/‖μ‖²).' -rfka 'none delta simple'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" variance-scale' -l 'variance-scale' -d 'Override the posterior\'s variance scale c.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" block-rows' -l 'block-rows' -d 'Rows per block (memory bound).' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" v verbose' -l 'verbose' -s 'v' -d 'Print the rank correlation of the per-row trace with 1/‖e‖² (identity adapter) on standard error.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" trace' -l 'trace' -d 'Also write \'trace\' (N): Σ_d var_d per row, a per-row uncertainty to audit with calib-metrics --uncertainty trace.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" q quiet' -s 'q' -l 'quiet' -d 'Print no notes or warnings on standard error (errors are always printed).'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" version' -l 'version' -d 'Show the version.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace apply" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'emb-laplace' -n '__emb-laplace_should_offer_completions_for_flags_or_options "emb-laplace help" version' -l 'version' -d 'Show the version.'
