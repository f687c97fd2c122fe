function __sve-train_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __sve-train_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __sve-train_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __sve-train_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __sve-train_parse_tokens -S
    set -l unparsed_tokens (__sve-train_tokens -pc)
    switch $unparsed_tokens[1]
    case 'sve-train'
        __sve-train_parse_subcommand 1 'basis=' 'stack=' 'layers=' 'heads=' 'max-tokens=' 'lengths=' 'method=' 'members=' 'epochs=' 'steps=' 'lr=' 'weight-decay=' 'batch-size=' 'clip=' 'warmup=' 'sigma-init=' 'head-init-std=' 'batches=' 'seed=' 'val-fraction=' 'split=' 'classes=' 'features=' 'labels=' 'v/verbose' 'threads=' 'o/output=' 'level=' 'no-shuffle' 'q/quiet' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __sve-train_parse_subcommand -r 1 'version'
        end
    end
end

function __sve-train_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __sve-train_parse_subcommand -S -a positional_count
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

function __sve-train_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __sve-train_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__sve-train_tokens -p)
    if test -z "$(__sve-train_tokens -t)"
        set -l index (count (__sve-train_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'sve-train' -f
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" basis' -l 'basis' -d 'The basis from sve-decompose (with the LayerNorms the stack names).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" stack' -l 'stack' -d 'The pretrained stack, e.g. "residual(linear:A gelu linear:B) layernorm:C".' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" layers' -l 'layers' -d 'Whole transformer layers A to B of the basis (token-level input; instead of --stack).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" heads' -l 'heads' -d 'Attention heads of each layer (--layers).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" max-tokens' -l 'max-tokens' -d 'Token level: at most N token rows per forward pass.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" lengths' -l 'lengths' -d 'Token level: name of the tensor of each text\'s token rows.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" method' -l 'method' -d 'sve (singular value ensemble) or deep-ensemble (the baseline).' -rfka 'sve deep-ensemble'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" members' -l 'members' -d 'Ensemble members M (1: a single model).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" epochs' -l 'epochs' -d 'Training epochs (default: 10, or more to reach 100 steps; see --steps).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" steps' -l 'steps' -d 'Train at least S optimiser steps (epochs derived from the training rows and --batch-size).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" lr' -l 'lr' -d 'Peak learning rate (AdamW).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" weight-decay' -l 'weight-decay' -d 'AdamW decoupled weight decay.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" batch-size' -l 'batch-size' -d 'Rows per mini-batch.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" clip' -l 'clip' -d 'Global gradient-norm clip.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" warmup' -l 'warmup' -d 'Warm-up as a fraction of all steps.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" sigma-init' -l 'sigma-init' -d 'σ of the multiplicative noise on the singular values at initialisation.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" head-init-std' -l 'head-init-std' -d 'Standard deviation of the member heads\' initial weights (biases start at 0).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" batches' -l 'batches' -d 'shared: every member sees the same mini-batch (SVE default); independent: each member its own order (deep-ensemble default).' -rfka 'shared independent'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" seed' -l 'seed' -d 'Seed of every random choice.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" val-fraction' -l 'val-fraction' -d 'Rows held out (at random, seeded) for validation.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" split' -l 'split' -d 'Stream with an integer \'split\' tensor per row: 0 train, 1 validation, anything else unused (test).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" classes' -l 'classes' -d 'Number of classes (default: largest label + 1).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" features' -l 'features' -d 'Name of the features tensor.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" labels' -l 'labels' -d 'Name of the labels tensor.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" v verbose' -l 'verbose' -s 'v' -d 'Report every epoch (loss, validation accuracy and NLL) on standard error.'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" q quiet' -s 'q' -l 'quiet' -d 'Print no notes or warnings on standard error (errors are always printed).'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" version' -l 'version' -d 'Show the version.'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_positional "sve-train" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'sve-train' -n '__sve-train_should_offer_completions_for_flags_or_options "sve-train help" version' -l 'version' -d 'Show the version.'
