function __calib-metrics_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __calib-metrics_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __calib-metrics_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __calib-metrics_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __calib-metrics_parse_tokens -S
    set -l unparsed_tokens (__calib-metrics_tokens -pc)
    switch $unparsed_tokens[1]
    case 'calib-metrics'
        __calib-metrics_parse_subcommand 1 'labels=' 'logits' 'bins=' 'mode=' 'json' 'reliability-svg=' 'bootstrap=' 'seed=' 'ood=' 'no-classwise' 'gold=' 'relevant=' 'k=' 'confidence=' 'uncertainty=' 'risk-coverage-svg=' 'threads=' 'q/quiet' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __calib-metrics_parse_subcommand -r 1 'version'
        end
    end
end

function __calib-metrics_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __calib-metrics_parse_subcommand -S -a positional_count
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

function __calib-metrics_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __calib-metrics_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__calib-metrics_tokens -p)
    if test -z "$(__calib-metrics_tokens -t)"
        set -l index (count (__calib-metrics_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'calib-metrics' -f
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" labels' -l 'labels' -d 'Read \'labels\' (N integers in [0, K)) from FILE, a block at a time beside the input (or FILE\'s only tensor, whatever its name).' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" logits' -l 'logits' -d 'The input holds \'logits\' (or \'member_logits\'): apply a softmax per row first.'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" bins' -l 'bins' -d 'Number of bins for ECE, MCE, RMSCE, equal-mass and classwise ECE.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" mode' -l 'mode' -d 'Binning reported as ECE/MCE/RMSCE and drawn: default (lo, hi], torchmetrics, netcal.' -rfka 'default torchmetrics netcal'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" json' -l 'json' -d 'Print JSON instead of a table.'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" reliability-svg' -l 'reliability-svg' -d 'Write a reliability diagram (SVG) to FILE.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" bootstrap' -l 'bootstrap' -d 'Bootstrap resamples for 95 % intervals of accuracy, ECE, NLL and Brier (0: none; at most 100000).' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" seed' -l 'seed' -d 'Seed of the bootstrap: the same input and seed give the same intervals.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" ood' -l 'ood' -d 'A stream with an \'ood\' 0/1 vector (or one tensor) marking out-of-distribution rows, read beside the input.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" no-classwise' -l 'no-classwise' -d 'Skip classwise ECE (it costs a bin lookup per probability).'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" gold' -l 'gold' -d 'Similarity mode: gold scores (\'gold\', or the file\'s only tensor) for the input\'s \'scores\'.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" relevant' -l 'relevant' -d 'Retrieval mode: relevant corpus indices (\'relevant\', or the only tensor), N or N×R with -1 padding.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" k' -l 'k' -d 'Cut-offs for nDCG@k and Recall@k in retrieval mode.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" confidence' -l 'confidence' -d 'Audit the input\'s per-row tensor NAME as a confidence (higher = more trust) against the baseline.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" uncertainty' -l 'uncertainty' -d 'Audit the input\'s per-row tensor NAME as an uncertainty (higher = less trust) against the baseline.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" risk-coverage-svg' -l 'risk-coverage-svg' -d 'With --confidence or --uncertainty: write the risk–coverage curves (SVG) to FILE.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" q quiet' -s 'q' -l 'quiet' -d 'Print no notes or warnings on standard error (errors are always printed).'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" version' -l 'version' -d 'Show the version.'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_positional "calib-metrics" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'calib-metrics' -n '__calib-metrics_should_offer_completions_for_flags_or_options "calib-metrics help" version' -l 'version' -d 'Show the version.'
