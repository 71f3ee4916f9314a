package org.spectralpeft.cli;

import java.util.Arrays;
import java.util.stream.Collectors;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * Converts an option value to the enum constant whose {@code toString()} it is. picocli's own enum
 * conversion also accepts the constants' upper-case names and lists both spellings in its error.
 */
class Choices<E extends Enum<E>> implements ITypeConverter<E> {
    private final Class<E> type;

    Choices(Class<E> type) {
        this.type = type;
    }

    @Override
    public E convert(String value) {
        for (E e : type.getEnumConstants()) {
            if (e.toString().equals(value)) {
                return e;
            }
        }
        throw new TypeConversionException("'" + value + "' is not one of "
                + Arrays.stream(type.getEnumConstants()).map(Object::toString).collect(Collectors.joining(", ")));
    }
}
