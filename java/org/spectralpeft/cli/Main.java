package org.spectralpeft.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.MissingParameterException;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.UnmatchedArgumentException;
import picocli.CommandLine;

/** Command line: {@code java -jar spectral-peft.jar <command>}. Exit status: 0 done, 1 refused or failed, 2 bad command line. */
@Command(name = "spectral-peft", mixinStandardHelpOptions = true, versionProvider = Version.class,
        synopsisSubcommandLabel = "<command>",
        description = "Merge PEFT FourierFT adapters into models, inspect safetensors files, run the demo (CUDA or CPU).",
        subcommands = {Demo.class, MergeCommand.class, InspectCommand.class, BackendCommand.class, HelpCommand.class},
        footer = {"", "'spectral-peft help <command>' or '<command> --help' describes a command.",
                "Exit status: 0 done, 1 refused or failed, 2 bad command line."})
public final class Main implements Runnable {
    static final int OK = 0;
    static final int FAILED = 1;
    static final int BAD_COMMAND_LINE = 2;
    private static final int WIDTH = 100;

    @Spec
    CommandSpec spec;

    /**
     * Runs one command (see {@link #run}) and exits with its status.
     *
     * @param args the command line
     */
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /**
     * Runs one command; returns its exit status (0 success, 1 failure, 2 bad command line).
     *
     * @param args the command line
     * @return the exit status
     */
    public static int run(String[] args) {
        // built per call on the current System.out/err, so that a caller (or a test) that swapped them is obeyed
        CommandLine cli = commandLine();
        cli.setOut(new PrintWriter(System.out, true));
        cli.setErr(new PrintWriter(System.err, true));
        return cli.execute(args);
    }

    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        cli.setUsageHelpWidth(WIDTH);
        cli.setParameterExceptionHandler(Main::badCommandLine);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> failed(e, commandLine.getErr()));
        cli.getHelpSectionMap().put(CommandLine.Model.UsageMessageSpec.SECTION_KEY_COMMAND_LIST, Main::commandList);
        return cli;
    }

    /** Without a command: the usage, as for any other incomplete command line. */
    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "no command given");
    }

    private static int badCommandLine(ParameterException e, String[] args) {
        CommandLine cli = e.getCommandLine();
        if (e instanceof MissingParameterException && !cli.getUnmatchedArguments().isEmpty()) {
            // a misspelt required option is reported as missing; the misspelling, with a suggestion, helps more
            e = new UnmatchedArgumentException(cli, cli.getUnmatchedArguments());
        }
        PrintWriter err = cli.getErr();
        err.println("error: " + message(e));
        // the whole overview where the command itself is missing or unknown; otherwise a pointer to it
        if (UnmatchedArgumentException.printSuggestions(e, err)) {
            err.println("See '" + cli.getCommandSpec().qualifiedName() + " --help'.");
        } else if (cli.getParent() == null) {
            cli.usage(err, CommandLine.Help.Ansi.OFF);
        } else {
            String heading = "Usage: ";
            err.print(heading + new CommandLine.Help(cli.getCommandSpec(), CommandLine.Help.defaultColorScheme(
                    CommandLine.Help.Ansi.OFF)).synopsis(heading.length()));
            err.println("See '" + cli.getCommandSpec().qualifiedName() + " --help'.");
        }
        err.flush();
        return BAD_COMMAND_LINE;
    }

    /**
     * picocli's messages, except: a required option left out names all the command's required options; an
     * unknown word where a command belongs is called an unknown command.
     */
    private static String message(ParameterException e) {
        if (e instanceof MissingParameterException missing
                && missing.getMissing().stream().allMatch(a -> a.isOption() && a.required())) {
            CommandSpec command = e.getCommandLine().getCommandSpec();
            List<String> required = command.options().stream().filter(OptionSpec::required)
                    .map(OptionSpec::longestName).toList();
            String missed = missing.getMissing().stream().map(a -> ((OptionSpec) a).longestName())
                    .collect(Collectors.joining(", "));
            return command.name() + " needs " + String.join(", ", required.subList(0, required.size() - 1))
                    + (required.size() > 1 ? " and " : "") + required.get(required.size() - 1) + " (missing: " + missed + ")";
        }
        if (e instanceof UnmatchedArgumentException unmatched && e.getCommandLine().getParent() == null
                && !unmatched.getUnmatched().isEmpty() && !unmatched.getUnmatched().get(0).startsWith("-")) {
            return "unknown command '" + unmatched.getUnmatched().get(0) + "'";
        }
        return e.getMessage();
    }

    /** Refusals and failures (bad input, I/O) are one line; anything else is a bug, shown with its stack trace. */
    private static int failed(Exception e, PrintWriter err) {
        if (e instanceof IOException || e instanceof UncheckedIOException || e instanceof IllegalArgumentException
                || e instanceof IllegalStateException) {
            err.println("error: " + e.getMessage());
        } else {
            err.print("error: ");
            e.printStackTrace(err);
        }
        err.flush();
        return FAILED;
    }

    /** Each command with a short synopsis (its options and parameters, not -h and -V), so the overview shows how to call it. */
    private static String commandList(CommandLine.Help help) {
        StringBuilder list = new StringBuilder();
        String nl = System.lineSeparator();
        for (CommandLine.Help sub : help.subcommands().values()) {
            CommandSpec command = sub.commandSpec();
            StringBuilder line = new StringBuilder("  " + command.name());
            for (OptionSpec o : command.options()) {
                if (o.hidden() || o.usageHelp() || o.versionHelp()) {
                    continue;
                }
                String word = o.longestName() + (o.typeInfo().isBoolean() ? "" : "=" + o.paramLabel());
                append(line, o.required() ? word : "[" + word + "]", list, nl);
            }
            for (CommandLine.Model.PositionalParamSpec p : command.positionalParameters()) {
                if (!p.hidden()) {
                    append(line, p.required() ? p.paramLabel() : "[" + p.paramLabel() + "]", list, nl);
                }
            }
            list.append(line).append(nl);
            String text = command.usageMessage().header().length > 0 ? sub.header() : sub.description();
            for (String l : text.split("\\R")) {
                if (!l.isBlank()) {
                    list.append("        ").append(l.strip()).append(nl);
                }
            }
        }
        return list.toString();
    }

    /** Appends a word to a synopsis line, starting a new, indented line past the usage width. */
    private static void append(StringBuilder line, String word, StringBuilder done, String nl) {
        if (line.length() + 1 + word.length() > WIDTH) {
            done.append(line).append(nl);
            line.setLength(0);
            line.append("       ");
        }
        line.append(' ').append(word);
    }
}
